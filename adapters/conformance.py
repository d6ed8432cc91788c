"""Conformance checks for a ``federator-lookup/1`` endpoint, before it is registered.

The checks an authority (``federator-adapter check``) and the broker ("Test
this endpoint", ``federator adapter check``) run against an adapter:

- ``health``: ``GET /health`` names the protocol;
- ``test_lookup``: a correctly signed lookup for a child in the NHS test
  number range (999…) is answered by the protocol (echoed ``lookup_id``, a
  known ``status``, a valid answer);
- ``within_time_limit``: that answer came within ``timeout_s``;
- refusals with ``401`` of an ``unsigned`` request, a ``bad_signature`` (a key
  the broker does not have), a ``tampered_body`` (body hash mismatch), an
  ``expired`` token, a ``wrong_audience`` and a ``replayed`` request (the test
  lookup's exact token and body sent again).

No Flask and nothing of ``federator``: the broker passes its signer and, for
the expired token, its key. Without the key the ``expired`` check fails with a
detail saying it could not run: a check that was not made is not a pass.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import requests
from joserfc.jwk import ECKey

from adapters.protocol import (
    PROTOCOL,
    InvalidAnswer,
    encode_body,
    generate_signing_key,
    parse_answer,
    sign_request,
)

#: A valid (Modulus 11) NHS number in the test range: no real person has it.
TEST_NHS_NUMBER = "9990001006"
Signer = Callable[[bytes, str], str]
MAX_DETAIL = 300


@dataclass(frozen=True)
class CheckResult:
    name: str
    passed: bool
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "passed": self.passed, "detail": self.detail}


def conformance_body(test_nhs_number: str = TEST_NHS_NUMBER) -> dict[str, Any]:
    """A lookup for a fictional child, as the broker would send it."""
    return {
        "lookup_id": "conformance-" + uuid.uuid4().hex,
        "child": {"nhs_number": test_nhs_number, "given_name": "Conformance",
                  "family_name": "Testchild", "date_of_birth": "2015-01-01",
                  "postcodes": []},
        "basis": {"type": "statutory", "power": "children-act-1989-s17",
                  "reference": "CONFORMANCE-CHECK"},
        "purpose": "Conformance check of this adapter before registration (test data only)",
        "requester": {"id": "federator-conformance", "name": "Federator conformance check",
                      "role": "Automated check", "organisation": "Federator"},
        "include_past": False,
    }


def run_checks(url: str, *, sign: Signer, audience: str, timeout_s: float = 5.0,
               test_nhs_number: str = TEST_NHS_NUMBER, key: ECKey | None = None,
               issuer: str | None = None, session: requests.Session | None = None,
               ) -> list[CheckResult]:
    """Run every check against the endpoint at ``url``; never raises for the
    endpoint's faults (they are failed checks).

    ``sign(body, audience)`` is the broker's signer; ``key`` and ``issuer``
    (the same key, and the broker's id) let the ``expired`` check sign a
    token in the past. ``session`` may be a guarded ``requests.Session``
    (the registry's, which checks where it connects).
    """
    own_session = session is None
    http = session or _session()
    base = url.rstrip("/")
    try:
        results = [_health(http, base, timeout_s)]
        body = encode_body(conformance_body(test_nhs_number))
        token = sign(body, audience)
        results.extend(_test_lookup(http, base, body, token, timeout_s))

        def refused(name: str, what: str, raw: bytes, authorization: str | None) -> CheckResult:
            return _expect_401(http, base, name, what, raw, authorization, timeout_s)

        fresh = encode_body(conformance_body(test_nhs_number))
        results.append(refused("unsigned", "a request with no signature", fresh, None))
        stranger = generate_signing_key("conformance-stranger")
        forged = sign_request(fresh, stranger, issuer=issuer or "federator", audience=audience)
        results.append(refused("bad_signature", "a request signed with an unknown key",
                               fresh, f"Bearer {forged}"))
        other = encode_body(conformance_body(test_nhs_number))
        results.append(refused("tampered_body", "a body that does not match its signature",
                               other, f"Bearer {sign(fresh, audience)}"))
        if key is None or issuer is None:
            results.append(CheckResult(
                "expired", False, "not run: needs the broker's key and issuer to sign an "
                "expired token"))
        else:
            fresh = encode_body(conformance_body(test_nhs_number))
            old = sign_request(fresh, key, issuer=issuer, audience=audience,
                               now=time.time() - 3600)
            results.append(refused("expired", "a token that expired an hour ago", fresh,
                                   f"Bearer {old}"))
        fresh = encode_body(conformance_body(test_nhs_number))
        wrong = sign(fresh, f"not-{audience}")
        results.append(refused("wrong_audience", "a token for another authority", fresh,
                               f"Bearer {wrong}"))
        results.append(refused("replayed", "the test lookup sent again, token and all",
                               body, f"Bearer {token}"))
        return results
    finally:
        if own_session:
            http.close()


def _session() -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # no proxies from the environment
    return session


def _post(http: requests.Session, base: str, body: bytes, authorization: str | None,
          timeout_s: float) -> requests.Response:
    headers = {"Content-Type": "application/json", "Accept": "application/json",
               "User-Agent": "federator-conformance"}
    if authorization is not None:
        headers["Authorization"] = authorization
    return http.post(f"{base}/lookup", data=body, headers=headers, timeout=timeout_s,
                     allow_redirects=False)


def _health(http: requests.Session, base: str, timeout_s: float) -> CheckResult:
    try:
        response = http.get(f"{base}/health", timeout=timeout_s, allow_redirects=False,
                            headers={"Accept": "application/json"})
    except requests.RequestException as e:
        return CheckResult("health", False, f"GET /health failed: {_short(e)}")
    if response.status_code != 200:
        return CheckResult("health", False, f"GET /health answered HTTP {response.status_code}")
    try:
        data = response.json()
    except ValueError:
        return CheckResult("health", False, "GET /health did not answer JSON")
    if not isinstance(data, dict) or data.get("protocol") != PROTOCOL:
        return CheckResult("health", False, f"GET /health does not name protocol {PROTOCOL}")
    return CheckResult("health", True, f"GET /health: ok, {PROTOCOL}")


def _test_lookup(http: requests.Session, base: str, body: bytes, token: str,
                 timeout_s: float) -> list[CheckResult]:
    started = time.monotonic()
    try:
        response = _post(http, base, body, f"Bearer {token}", timeout_s)
    except requests.Timeout:
        return [CheckResult("test_lookup", False, f"no answer within {timeout_s:g} s"),
                CheckResult("within_time_limit", False, f"no answer within {timeout_s:g} s")]
    except requests.RequestException as e:
        return [CheckResult("test_lookup", False, f"request failed: {_short(e)}"),
                CheckResult("within_time_limit", False, "no answer")]
    elapsed_ms = int((time.monotonic() - started) * 1000)
    timing = CheckResult("within_time_limit", elapsed_ms <= timeout_s * 1000,
                         f"answered in {elapsed_ms} ms (limit {int(timeout_s * 1000)} ms)")
    if response.status_code != 200:
        return [CheckResult("test_lookup", False,
                            f"a correctly signed test lookup got HTTP {response.status_code}"),
                timing]
    lookup_id = _lookup_id(body)
    try:
        answer = parse_answer(response.content, lookup_id)
    except InvalidAnswer as e:
        return [CheckResult("test_lookup", False, _short(e)), timing]
    return [CheckResult("test_lookup", True,
                        f"answered status {answer['status']!r} for the test NHS number"), timing]


def _expect_401(http: requests.Session, base: str, name: str, what: str, body: bytes,
                authorization: str | None, timeout_s: float) -> CheckResult:
    try:
        response = _post(http, base, body, authorization, timeout_s)
    except requests.RequestException as e:
        return CheckResult(name, False, f"{what}: request failed: {_short(e)}")
    if response.status_code == 401:
        return CheckResult(name, True, f"{what}: refused with 401")
    return CheckResult(name, False, f"{what}: answered HTTP {response.status_code}, not 401")


def _lookup_id(body: bytes) -> str:
    return str(json.loads(body)["lookup_id"])


def _short(error: Exception) -> str:
    """What went wrong, in words an authority's IT team reads, never the Python
    exception text (``HTTPConnectionPool(host=…): Max retries exceeded …``)."""
    return plain_error(error)[:MAX_DETAIL]


#: words for what a connection failure's text says, first match wins
CONNECTION_WORDS = (
    (("refused",), "nothing is listening at that address (connection refused)"),
    (("name or service not known", "nodename nor servname", "nameresolution",
      "getaddrinfo", "temporary failure in name resolution", "no address associated"),
     "the host name does not resolve"),
    (("network is unreachable", "no route to host"), "the network is unreachable"),
    (("remotedisconnected", "connection aborted", "connection reset", "closed connection"),
     "the server closed the connection without answering"),
    (("address not allowed",), "the address is not one the broker may connect to"),
)


def plain_error(error: Exception) -> str:
    if isinstance(error, InvalidAnswer):
        return str(error) or "the answer is not a valid federator-lookup/1 answer"
    if isinstance(error, requests.exceptions.SSLError):
        return ("the TLS certificate was not accepted (not trusted, expired, or for "
                "another name)")
    if isinstance(error, requests.exceptions.ConnectTimeout):
        return "could not connect in time"
    if isinstance(error, requests.Timeout):
        return "no answer in time"
    if isinstance(error, requests.exceptions.InvalidURL | requests.exceptions.MissingSchema
                  | requests.exceptions.InvalidSchema):
        return "the address is not a valid URL"
    if isinstance(error, requests.TooManyRedirects):
        return "redirected too many times"
    if isinstance(error, requests.ConnectionError):
        text = repr(error).lower()
        for marks, words in CONNECTION_WORDS:
            if any(mark in text for mark in marks):
                return f"could not connect: {words}"
        return "could not connect"
    if isinstance(error, requests.RequestException):
        return "the request failed"
    return str(error) or "it failed"
