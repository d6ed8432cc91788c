"""The bad input catalogue: each kind of bad input gets a clear 4xx (JSON for
the API), never a 500, nothing is sent to an authority and nothing is lost;
names in every script, with apostrophes, hyphens and accents, are not bad
input: they travel the whole way to a kit's match. On PostgreSQL (production's
database, the stricter about text). The registry, audit and subject-access APIs
and their pages: test_bad_input_catalogue_admin.py."""

from __future__ import annotations

import json
import socket
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from support.budget import UNLIMITED
from support.named_children import Named, add_named_children, lookup_body, nhs_number
from support.services import postgres_schema

from federator.config import Settings
from federator.demo.federation import Federation, start_federation

pytestmark = pytest.mark.integration
CONTROL = "Contains a character that cannot be used here"


@pytest.fixture(scope="module")
def fed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Federation]:
    with postgres_schema() as database_url:
        federation = start_federation(Path(tmp_path_factory.mktemp("catalogue")), base=Settings(
            database_url=database_url,
            **UNLIMITED, deadline_default_ms=3000))
        yield federation
        federation.stop()


@pytest.fixture(scope="module")
def named(fed: Federation) -> list[Named]:
    return add_named_children(fed)


@pytest.fixture(scope="module")
def token(fed: Federation) -> str:
    return fed.token("practitioner")


def post(fed: Federation, token: str, *, json_body: Any = None, data: Any = None,
         **headers: str) -> requests.Response:
    return requests.post(f"{fed.broker.url}/api/v1/lookups", json=json_body, data=data,
                         timeout=30, headers={"Authorization": f"Bearer {token}", **headers})


def requested(fed: Federation) -> int:
    return len(fed.app.extensions["federator"].trail.records(event="lookup.requested",
                                                             limit=100_000))


def outcome_at(response: requests.Response, authority: str) -> str:
    assert response.status_code == 200, response.text
    return {a["id"]: a["outcome"] for a in response.json()["authorities"]}[authority]


# -- names are not bad input ---------------------------------------------------------

@pytest.mark.parametrize("with_nhs", [True, False], ids=["nhs-and-name", "name-and-dob"])
def test_names_in_every_script_reach_a_kit_match(fed: Federation, token: str,
                                                 named: list[Named], with_nhs: bool) -> None:
    for person in named:
        response = post(fed, token, json_body=lookup_body(person.child(with_nhs=with_nhs)))
        assert outcome_at(response, person.authority) == "match", person
        assert response.json()["professionals"], person


def test_names_match_whatever_their_unicode_form_or_case(fed: Federation, token: str,
                                                         named: list[Named]) -> None:
    zoe = named[1]  # "Zoë Ní Bhriain": decomposed, as some keyboards and systems send it
    child = zoe.child(with_nhs=False)
    child["given_name"] = unicodedata.normalize("NFD", child["given_name"])
    child["family_name"] = child["family_name"].upper()
    assert outcome_at(post(fed, token, json_body=lookup_body(child)), zoe.authority) == "match"
    sian = named[0]  # typed with a typographic apostrophe instead of the kit's straight one
    child = sian.child(with_nhs=False)
    child["family_name"] = child["family_name"].replace("'", "\u2019")
    assert outcome_at(post(fed, token, json_body=lookup_body(child)), sian.authority) == "match"


# -- bodies ---------------------------------------------------------------------------

def test_an_oversized_body_is_a_json_413(fed: Federation, token: str) -> None:
    before = requested(fed)
    big = json.dumps({"purpose": "x" * 100_000})
    for data in (big, iter([big.encode()])):  # with a Content-Length, and chunked
        response = post(fed, token, data=data, **{"Content-Type": "application/json"})
        assert response.status_code == 413
        assert response.json()["code"] == 413
    assert requested(fed) == before


@pytest.mark.parametrize("body", [
    "[" * 30_000 + "]" * 30_000,                      # deep, and over the size limit
    "[" * 5_000 + "]" * 5_000,                        # deep, under it
    '{"a":' * 3_000 + "1" + "}" * 3_000,
    '{"deadline_ms": ' + "9" * 5_000 + "}",           # a number Python will not convert
    '{"deadline_ms": 1e400}',
    '{"deadline_ms": NaN}',
    b'{"purpose": "\xff\xfe"}',                       # not UTF-8
    '{"purpose": "a", "purpose": "b"}',
], ids=["deep-big", "deep-array", "deep-object", "long-number", "infinity", "nan",
        "bad-utf8", "duplicate-keys"])
def test_unreasonable_json_is_refused_with_a_4xx(fed: Federation, token: str,
                                                 body: str | bytes) -> None:
    before = requested(fed)
    response = post(fed, token, data=body, **{"Content-Type": "application/json"})
    assert response.status_code in (413, 422), response.text
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.json()["code"] == response.status_code
    assert requested(fed) == before


@pytest.mark.parametrize("content_type", ["text/plain", "application/xml",
                                          "multipart/form-data; boundary=x", "image/png"])
def test_a_body_that_is_not_json_says_so(fed: Federation, token: str, named: list[Named],
                                         content_type: str) -> None:
    before = requested(fed)
    response = post(fed, token, data=json.dumps(lookup_body(named[0].child())),
                    **{"Content-Type": content_type})
    assert response.status_code == 422, response.text
    assert response.json()["errors"] == [
        "The body must be JSON, sent with Content-Type: application/json."]
    assert requested(fed) == before


@pytest.mark.parametrize(("where", "value"), [
    ("purpose", "Assessment under s17\u0000 of the Act"),
    ("child.given_name", "An\u0000na"),
    ("child.family_name", "Okafor\u0007"),
    ("basis.reference", "CASE-\ud800-1"),
    ("child.given_name", "Zo\udce9"),
], ids=["nul-purpose", "nul-name", "bell-name", "surrogate-reference", "surrogate-name"])
def test_text_that_cannot_be_kept_names_its_field(fed: Federation, token: str,
                                                  named: list[Named], where: str,
                                                  value: str) -> None:
    body = lookup_body(named[0].child())
    *parents, leaf = where.split(".")
    node = body
    for key in parents:
        node = node[key]
    node[leaf] = value
    trail = fed.app.extensions["federator"].trail
    refused = len(trail.records(event="lookup.refused", limit=100_000))
    before = requested(fed)
    # json.dumps escapes the surrogate (\ud800), as a client's JSON encoder would
    response = post(fed, token, data=json.dumps(body), **{"Content-Type": "application/json"})
    assert response.status_code == 422, response.text
    node = response.json()["errors"]["json"]
    for key in where.split("."):
        node = node[key]
    assert CONTROL in node[0]
    assert requested(fed) == before
    records = trail.records(event="lookup.refused", limit=100_000)
    assert len(records) == refused + 1  # the refusal is audited all the same
    assert where in records[-1]["fields"]


def test_overlong_names_are_refused_by_field(fed: Federation, token: str,
                                             named: list[Named]) -> None:
    body = lookup_body(named[0].child())
    body["child"]["family_name"] = "Ñ" * 5_000
    response = post(fed, token, json_body=body)
    assert response.status_code == 422
    assert "family_name" in response.json()["errors"]["json"]["child"]


# -- headers --------------------------------------------------------------------------

@pytest.mark.parametrize("request_id", ["r" * 5_000, "a b c d e f g h", "ünïcode-request-id",
                                        "<script>alert(1)</script>", "short"])
def test_an_unusable_request_id_is_replaced_not_echoed(fed: Federation, token: str,
                                                       named: list[Named],
                                                       request_id: str) -> None:
    response = post(fed, token, json_body=lookup_body(named[0].child()),
                    **{"X-Request-Id": request_id.encode().decode("latin-1")})
    assert response.status_code == 200
    echoed = response.headers["X-Request-Id"]
    assert echoed != request_id and len(echoed) == 32 and echoed.isalnum()


def raw_request(fed: Federation, head: str, body: bytes = b"") -> bytes:
    host, port = fed.broker.url.split("//")[1].split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(head.encode("latin-1") + body)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return data


def test_a_header_with_cr_or_lf_injects_nothing(fed: Federation, token: str,
                                                named: list[Named]) -> None:
    body = json.dumps(lookup_body(named[0].child())).encode()
    for separator in ("\r", "\n"):
        head = (f"POST /api/v1/lookups HTTP/1.1\r\nHost: x\r\n"
                f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
                f"X-Request-Id: injected-1234{separator}Set-Cookie: owned=1\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n")
        reply = raw_request(fed, head, body)
        status, _, rest = reply.partition(b"\r\n")
        headers = rest.split(b"\r\n\r\n")[0].lower()
        assert b" 500 " not in status
        assert b"owned=1" not in headers
        assert b"set-cookie: owned" not in headers


def test_an_absurd_header_is_a_4xx(fed: Federation, token: str, named: list[Named]) -> None:
    response = post(fed, token, json_body=lookup_body(named[0].child()),
                    **{"X-Filler": "f" * 100_000})
    assert 400 <= response.status_code < 500


@pytest.mark.parametrize("authorization", [
    "Bearer " + "é" * 20, "Bearer " + "a" * 20_000, "Bearer a.b.c", "Basic dXNlcjpwYXNz",
    "Bearer", "bearer " + "x" * 10,
])
def test_a_bad_authorization_header_is_a_401(fed: Federation, named: list[Named],
                                              authorization: str) -> None:
    response = requests.post(f"{fed.broker.url}/api/v1/lookups", timeout=30,
                             json=lookup_body(named[0].child()),
                             headers={"Authorization": authorization.encode()
                                      .decode("latin-1")})
    assert response.status_code in (401, 431), response.text
    if response.status_code == 401:
        assert response.json()["code"] == 401


def test_the_nhs_number_forms_that_are_refused_name_the_field(fed: Federation,
                                                               token: str) -> None:
    valid = nhs_number("943476591")
    for bad in (valid[:9] + str((int(valid[9]) + 1) % 10), "12345", "943 476 591X",
                "９４３４７６５９１９"):
        body = lookup_body({"nhs_number": bad, "postcodes": ["LS6 2AB"]})
        response = post(fed, token, json_body=body)
        assert response.status_code == 422, bad
        assert "nhs_number" in response.json()["errors"]["json"]["child"], bad
