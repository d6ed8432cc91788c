"""The broker's client for FHIR R4 (UK Core) endpoints: protocol ``fhir-r4``.

One lookup is a few FHIR searches, all within the lookup's deadline:

1. the Patient (:mod:`adapters.fhir_match`), by
   ``identifier=https://fhir.nhs.uk/Id/nhs-number|…``, else by ``Patient/$match``
   when the CapabilityStatement offers it (its grades judged by the kit's rules)
   or by family name / given name with birth date, scored by the kit's matching;
2. its CareTeams (participants) and EpisodeOfCares (care managers), asking
   the server to ``_include`` the Practitioner, PractitionerRole and
   Organization they name, and fetching by id whatever it did not include;
   ``next`` links are followed on the same server only, up to ``max_pages``;
3. the kit's policy (:mod:`adapters.fhir_policy`): a restricted record gets the
   registry's route and nobody; sensitive services only on a covering basis, a
   child known only through them answering as not known;
4. the professionals mapped to the ``federator-lookup/1`` answer shape and
   validated by the same :func:`adapters.protocol.parse_answer` as any adapter's.

Authentication: OAuth2 client credentials from the endpoint's ``credentials``,
either with a ``client_secret`` (HTTP Basic; ``token_url``, ``client_id``,
``client_secret``, optional ``scope``) or, with ``auth = "smart_backend"``, SMART
Backend Services: a client assertion JWT signed with the endpoint's
``private_key`` (ES384 or RS384, :mod:`adapters.smart_auth`), the token URL
given or discovered from ``.well-known/smart-configuration``. Token requests
go through the client's own pool (URL guard at connect, no redirects, within
the deadline). The token is
cached until shortly before it expires, in Redis when the broker has it; a 401
with a cached token fetches a new one once.

The standard as servers speak it (:mod:`adapters.fhir_reading`; docs/fhir-wire.md,
"What a FHIR server must support / may support"): ``_count`` on every search;
``next`` links and absolute references on the registered base, its origin or a
base the server declares, always asked on the registered base, never on another
server; contained and versioned references read; CareTeams reached through
``EpisodeOfCare.team``; an OperationOutcome's diagnostics kept without patient
data (:mod:`adapters.fhir_outcome`). What the work cap or another server stops
the client reading gives a *partial* answer (:mod:`adapters.fhir_paging`): what
was read, a notice, and the reasons by name, never an error.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import time
from collections.abc import Mapping
from dataclasses import replace
from datetime import date
from typing import Any
from urllib.parse import quote_plus, urlencode, urlsplit

from adapters import fhir_outcome, fhir_paging, fhir_reading
from adapters.base import AdapterError, AdapterTimeout, OutboundClient, Reply, Target
from adapters.fhir_answer import FhirAnswering
from adapters.fhir_policy import FhirPolicy, screen, service_references
from adapters.fhir_r4_mapping import professionals_from, references
from adapters.fhir_tokens import MemoryTokenCache, RedisTokenCache, TokenCache
from adapters.kit.policy import basis_allows_sensitive
from adapters.protocol import InvalidAnswer, parse_answer
from adapters.smart_auth import (
    CLIENT_SECRET,
    SMART_BACKEND,
    SmartKeyError,
    auth_method,
    build_assertion,
    key_id,
    load_private_key,
    token_form,
)
from adapters.wire_professional import MAX_PROFESSIONALS

PROTOCOL = "fhir-r4"
NHS_NUMBER_SYSTEM = "https://fhir.nhs.uk/Id/nhs-number"
FHIR_JSON = "application/fhir+json"
TOKEN_MARGIN_S = 30
MAX_RESOLVE = 50
PAGE_SIZE = 50
DISCOVERY_TTL_S = 3600
OAUTH_ERROR = re.compile(r"^[a-z_]{1,40}$")


class FhirR4Client(FhirAnswering, fhir_reading.FhirReading, OutboundClient):
    protocol = PROTOCOL
    needs_credentials = True  # the broker passes the endpoint's decrypted credentials

    def __init__(self, *, tokens: TokenCache | None = None, max_pages: int = 10,
                 page_size: int = PAGE_SIZE, max_reads: int = MAX_RESOLVE,
                 max_professionals: int = MAX_PROFESSIONALS, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.tokens: TokenCache = tokens or MemoryTokenCache()
        self.max_pages = max_pages
        self.page_size = page_size
        self.max_reads = max_reads
        self.max_professionals = max_professionals

    @classmethod
    def from_context(cls, context: Any) -> FhirR4Client:
        """Built by :mod:`adapters.plugins` for the broker."""
        tokens = (RedisTokenCache(context.redis, context.redis_prefix)
                  if getattr(context, "redis", None) is not None else MemoryTokenCache())
        return cls(tokens=tokens, max_answer_bytes=context.max_answer_bytes,
                   max_professionals=getattr(context, "max_professionals", MAX_PROFESSIONALS),
                   user_agent=context.user_agent, resolve=getattr(context, "resolve", None),
                   ca_file=getattr(context, "ca_file", None))

    # -- the lookup -------------------------------------------------------------

    def lookup(self, target: Target, payload: Mapping[str, Any], *, deadline: float,
               request_id: str | None = None) -> dict[str, Any]:
        """One lookup, within its reading budget (:mod:`adapters.fhir_reading`): the
        answer says by name what the client could not read (``partial``)."""
        child = payload.get("child") or {}
        sent = [str(v) for k, v in child.items() if k != "postcodes" and v]
        reading = fhir_paging.Reading(target.url, self.max_pages, self.max_reads,
                                      (*sent, *map(str, child.get("postcodes") or [])))
        token = fhir_reading.READING.set(reading)
        try:
            result = self._answer_once(target, payload, deadline=deadline)
        finally:
            fhir_reading.READING.reset(token)
        return fhir_paging.with_partial(result, reading)

    def _answer_once(self, target: Target, payload: Mapping[str, Any], *, deadline: float,
                     request_id: str | None = None) -> dict[str, Any]:
        started = time.monotonic()
        answer = self._answer(target, payload, deadline)  # adapters/fhir_answer.py
        try:
            result = parse_answer(json.dumps(answer).encode(), str(payload["lookup_id"]),
                                  max_professionals=self.max_professionals)
        except InvalidAnswer as e:  # pragma: no cover - our own mapping's shape
            raise AdapterError(str(e)) from e
        result["latency_ms"] = int((time.monotonic() - started) * 1000)
        return result

    def _professionals(self, target: Target, patient: Mapping[str, Any], deadline: float,
                       policy: FhirPolicy, basis: Mapping[str, Any], include_past: bool
                       ) -> tuple[list[dict[str, Any]], bool]:
        """The professionals this basis may see, and whether the child is known here
        only through involvement it may not (``unseen``)."""
        subject = f"Patient/{patient['id']}"
        known: dict[str, dict[str, Any]] = {}
        teams = self._search(target, "CareTeam", [
            ("patient", subject), ("_include", "CareTeam:participant"),
            ("_include:iterate", "PractitionerRole:practitioner")], deadline, known)
        episodes = self._search(target, "EpisodeOfCare", [
            ("patient", subject), ("_include", "EpisodeOfCare:care-manager"),
            ("_include", "EpisodeOfCare:organization")], deadline, known)
        teams = [t for t in teams if t.get("resourceType") == "CareTeam"]
        episodes = [e for e in episodes if e.get("resourceType") == "EpisodeOfCare"]
        teams += self._episode_teams(target, episodes, teams, subject, known, deadline)
        self._resolve(target, references(teams, episodes, known), known, deadline)
        if not basis_allows_sensitive(basis):
            self._resolve(target, service_references(known), known, deadline)
        seen = screen(teams, episodes, known, policy, basis)
        people = list(professionals_from(seen.teams, seen.episodes, known, today=date.today()))
        return [p for p in people if include_past or p["current"]], seen.withheld and not people

    # -- FHIR REST ----------------------------------------------------------------

    def _get_json(self, target: Target, path: str, deadline: float, *,
                  missing_ok: bool = False, on_origin: bool = False) -> Any:
        """A resource at ``path`` under the registered base or, ``on_origin``, at an
        absolute path on its origin (the same token; never another host)."""
        if on_origin:
            parts = urlsplit(target.url)
            target = replace(target, url=f"{parts.scheme}://{parts.netloc}")
        reply = self._get(target, path, deadline)
        if reply.status == 404 and missing_ok:
            return None
        if reply.status != 200:
            raise AdapterError(f"HTTP {reply.status}{operation_outcome(reply.body)}")
        try:
            data = json.loads(reply.body)
        except (ValueError, UnicodeDecodeError) as e:
            raise AdapterError("the FHIR server did not answer JSON") from e
        if not isinstance(data, dict):
            raise AdapterError("the FHIR server did not answer a resource")
        return data

    def _post_json(self, target: Target, path: str, body: Mapping[str, Any],
                   deadline: float) -> Any:
        """A FHIR operation's answer; None when the server does not have it after all
        (404, 405, 501: the caller falls back)."""
        reply = self._get(target, path, deadline, method="POST",
                          body=json.dumps(body).encode())
        if reply.status in (404, 405, 501):
            return None
        if reply.status != 200:
            raise AdapterError(f"HTTP {reply.status}{operation_outcome(reply.body)}")
        data = _json_object(reply.body)
        if not data:
            raise AdapterError("the FHIR server did not answer a resource")
        return data

    def _get(self, target: Target, path: str, deadline: float, *, method: str = "GET",
             body: bytes | None = None) -> Reply:
        headers = {"Accept": FHIR_JSON}
        if body is not None:
            headers["Content-Type"] = FHIR_JSON
        token, cached = self._token(target, deadline)
        if token:
            headers["Authorization"] = f"Bearer {token}"
        reply = self.request(method, target, path, body=body, headers=headers,
                             deadline=deadline)
        if reply.status == 401 and cached:
            self.tokens.delete(_token_key(target))
            token, _ = self._token(target, deadline)
            headers["Authorization"] = f"Bearer {token}"
            reply = self.request(method, target, path, body=body, headers=headers,
                                 deadline=deadline)
        if reply.status == 401:
            raise AdapterError("HTTP 401: the FHIR server refused the broker's credentials")
        return reply

    def _token(self, target: Target, deadline: float) -> tuple[str | None, bool]:
        """The access token and whether it came from the cache (None: no credentials)."""
        creds = target.credentials or {}
        try:
            method = auth_method(creds)
        except ValueError as e:
            raise AdapterError(f"credentials: {e}") from e
        if method == CLIENT_SECRET and not creds.get("token_url"):
            return None, False
        key = _token_key(target)
        held = self.tokens.get(key)
        if held:
            return held, True
        if min(deadline - time.monotonic(), target.timeout_ms / 1000) <= 0:
            raise AdapterTimeout("no time left to obtain an access token")
        if method == SMART_BACKEND:
            token = self._smart_token(target, creds, deadline)
        else:
            token = self._secret_token(target, creds, deadline)
        access = token.get("access_token")
        if not access or not isinstance(access, str):
            raise AdapterError("the token endpoint gave no access token")
        try:
            lifetime = int(token.get("expires_in") or 300)
        except (TypeError, ValueError):
            lifetime = 300
        keep = lifetime - min(TOKEN_MARGIN_S, lifetime // 2)
        if keep >= 1:
            self.tokens.set(key, access, keep)
        return access, False

    def _secret_token(self, target: Target, creds: Mapping[str, str], deadline: float
                      ) -> Mapping[str, Any]:
        """OAuth2 client credentials with ``client_secret`` (HTTP Basic, RFC 6749 2.3.1)."""
        pair = f"{quote_plus(creds.get('client_id') or '')}:" \
               f"{quote_plus(creds.get('client_secret') or '')}"
        form = {"grant_type": "client_credentials"}
        if creds.get("scope"):
            form["scope"] = creds["scope"]
        basic = base64.b64encode(pair.encode()).decode()
        return self._post_token(target, creds["token_url"], form, "client credentials",
                                deadline, {"Authorization": f"Basic {basic}"})

    def _smart_token(self, target: Target, creds: Mapping[str, str], deadline: float
                     ) -> Mapping[str, Any]:
        """SMART Backend Services: client credentials with a signed client assertion
        (:mod:`adapters.smart_auth`)."""
        try:
            private = load_private_key(creds.get("private_key") or "")
        except SmartKeyError as e:
            raise AdapterError(f"SMART credentials: {e}") from e
        client_id = creds.get("client_id")
        if not client_id:
            raise AdapterError("SMART credentials: client_id is missing")
        token_url = creds.get("token_url") or self._discover_token_url(target, deadline)
        assertion = build_assertion(private, client_id=client_id, token_url=token_url,
                                    now=int(time.time()), kid=key_id(private, creds))
        return self._post_token(target, token_url, token_form(assertion, creds.get("scope")),
                                "SMART client assertion", deadline, {})

    def _post_token(self, target: Target, token_url: str, form: Mapping[str, str],
                    what: str, deadline: float, headers: Mapping[str, str]) -> dict[str, Any]:
        """POST the token request through this client's pool: the URL guard checks the
        address at connect, no redirect is followed, and the deadline bounds it."""
        parts = urlsplit(token_url)
        origin = f"{parts.scheme}://{parts.netloc}"
        where = Target(id=target.id, url=origin, timeout_ms=target.timeout_ms)
        reply = self.request("POST", where, token_url[len(origin):] or "/",
                             body=urlencode(form).encode(), deadline=deadline, headers={
                                 "Content-Type": "application/x-www-form-urlencoded",
                                 "Accept": "application/json", **headers})
        data = _json_object(reply.body)
        if reply.status != 200:
            code = str(data.get("error") or "")
            named = f" {code}" if OAUTH_ERROR.match(code) else ""
            raise AdapterError("could not obtain an access token: the token endpoint refused "
                               f"the {what} (HTTP {reply.status}{named})")
        return data

    def _discover_token_url(self, target: Target, deadline: float) -> str:
        """The ``token_endpoint`` of ``{base}/.well-known/smart-configuration``, kept
        an hour in the token cache."""
        key = "smart-config:" + hashlib.sha256(target.url.encode()).hexdigest()[:32]
        held = self.tokens.get(key)
        if held:
            return held
        reply = self.request("GET", target, "/.well-known/smart-configuration",
                             headers={"Accept": "application/json"}, deadline=deadline)
        found = _json_object(reply.body).get("token_endpoint") if reply.status == 200 else None
        if not isinstance(found, str) or not _allowed_token_url(found, target.url):
            raise AdapterError("SMART credentials have no token_url and the FHIR server's "
                               ".well-known/smart-configuration names no usable token_endpoint")
        self.tokens.set(key, found, DISCOVERY_TTL_S)
        return found


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def _allowed_token_url(url: str, base: str) -> bool:
    """https, or plain http only when the FHIR server itself is (allowed) plain http."""
    scheme, host = urlsplit(url).scheme, urlsplit(url).hostname
    return bool(host) and (scheme == "https" or (scheme == "http"
                                                 and urlsplit(base).scheme == "http"))


def _token_key(target: Target) -> str:
    creds = target.credentials or {}
    raw = (f"{target.id}|{creds.get('token_url')}|{creds.get('client_id')}|{creds.get('scope')}"
           f"|{creds.get('auth')}|{creds.get('kid')}")
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


def operation_outcome(body: bytes) -> str:
    """An OperationOutcome's severities, codes and diagnostics, with whatever this
    lookup sent about the child, and anything shaped like a person's detail, cut
    out (:func:`adapters.fhir_outcome.outcome_detail`)."""
    reading = fhir_reading.READING.get(None)
    return fhir_outcome.outcome_detail(body, reading.sent if reading is not None else ())
