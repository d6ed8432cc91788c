"""The JSON Schemas of ``federator-lookup/1`` (docs/schemas/) against the real
thing, with an independent validator (``jsonschema``, draft 2020-12), issue 22.

A real fan-out: the broker's lookups go over HTTP to real kits on loopback, and
every request body, bearer token and answer is captured at the kit's WSGI edge,
as bytes. The requests must validate against ``lookup-request.schema.json`` (the
token against ``lookup-token.schema.json``), the answers (match, no_match, a
possible match, a shielded child) against ``lookup-answer.schema.json``, and the
kit's refusals (401, 400, 413) against ``lookup-error.schema.json``. Then each
schema must refuse a real message broken in one field at a time.
"""

from __future__ import annotations

import base64
import copy
import io
import json
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from jsonschema import Draft202012Validator, FormatChecker
from support.protocol_breaks import ANSWER_BREAKS, REQUEST_BREAKS

from federator.config import Settings
from federator.demo.federation import Federation, start_federation
from federator.demo.model import Child

pytestmark = pytest.mark.integration

SCHEMAS = Path(__file__).resolve().parents[2] / "docs" / "schemas"
PURPOSE = "Assessment under section 17: finding services already involved"


def validator(name: str) -> Draft202012Validator:
    schema = json.loads((SCHEMAS / f"{name}.schema.json").read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=FormatChecker())


REQUEST, ANSWER, ERROR, TOKEN = (validator(n) for n in (
    "lookup-request", "lookup-answer", "lookup-error", "lookup-token"))


def problems(v: Draft202012Validator, document: Any) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
            for e in v.iter_errors(document)]


class Recorder:
    """WSGI middleware in front of a kit: keeps each exchange as it crossed the wire."""

    def __init__(self, app: Callable[..., Any]) -> None:
        self.app = app
        self.exchanges: list[dict[str, Any]] = []

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        environ["wsgi.input"] = io.BytesIO(body)
        status: list[str] = []

        def remember(code: str, headers: Any, exc_info: Any = None) -> Any:
            status.append(code)
            return start_response(code, headers, exc_info)

        answer = b"".join(self.app(environ, remember))
        if environ["PATH_INFO"] == "/lookup":
            self.exchanges.append({
                "body": body, "authorization": environ.get("HTTP_AUTHORIZATION", ""),
                "checkpoint": environ.get("HTTP_FEDERATOR_CHECKPOINT"),
                "status": int(status[0].split()[0]), "answer": answer})
        return [answer]


@pytest.fixture(scope="module")
def fed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Federation]:
    federation = start_federation(tmp_path_factory.mktemp("schemas") / "demo", notify="off",
                                  base=Settings(lookups_per_minute=1000, lookups_per_day=10000,
                                                deadline_default_ms=5000))
    for served in federation.kit_threads:  # werkzeug reads server.app per request
        served.server.app = Recorder(served.server.app)
    yield federation
    federation.stop()


def recorders(fed: Federation) -> list[Recorder]:
    return [served.server.app for served in fed.kit_threads]


def exchanges(fed: Federation) -> list[dict[str, Any]]:
    return [x for r in recorders(fed) for x in r.exchanges]


def consent() -> dict[str, Any]:
    return {"type": "consent", "given_by": "parent",
            "given_on": (date.today() - timedelta(days=1)).isoformat(),
            "reference": "CASE-22", "covers_sensitive_services": False}


def ask(fed: Federation, child: dict[str, Any], basis: dict[str, Any] | None = None) -> None:
    response = requests.post(
        f"{fed.broker.url}/api/v1/lookups", timeout=30,
        headers={"Authorization": f"Bearer {fed.token()}"},
        json={"child": child, "purpose": PURPOSE, "basis": basis or consent(),
              "include_past": True})
    assert response.status_code == 200, response.text


def healthy(fed: Federation, c: Child) -> bool:
    return bool(c.known_to) and all(fed.world.authority(a).behaviour == "normal"
                                    for a in c.known_to)


@pytest.fixture(scope="module")
def captured(fed: Federation) -> list[dict[str, Any]]:
    """Lookups that make the kits give every kind of answer they give."""
    world = fed.world
    plain = next(c for c in world.children if healthy(fed, c) and not c.shielded)
    shielded = next(c for c in world.children if c.shielded and healthy(fed, c))
    nobody = next(c for c in world.children if not c.known_to)
    ask(fed, plain.identity())  # match (and no_match from the authorities that do not know)
    ask(fed, shielded.identity())  # match with a notice only
    ask(fed, {**nobody.identity(), "nhs_number": None})  # no_match by details
    possible = {**plain.identity(), "nhs_number": None,
                "given_name": plain.given_name[0] + "x"}  # a possible match
    ask(fed, possible)
    ask(fed, plain.identity(), {"type": "safeguarding", "justification":
                                "Risk of significant harm reported by the school today; "
                                "asking the family would put the child at risk."})
    ask(fed, plain.identity(), {"type": "statutory", "power": "children-act-1989-s47",
                                "reference": "S47-2026-001"})
    return exchanges(fed)


def answers(captured: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [json.loads(x["answer"]) for x in captured if x["status"] == 200]


def test_every_request_the_broker_sent_validates(captured: list[dict[str, Any]]) -> None:
    assert len(captured) >= 6
    for exchange in captured:
        body = json.loads(exchange["body"])
        assert problems(REQUEST, body) == [], body
    kinds = {json.loads(x["body"])["basis"]["type"] for x in captured}
    assert kinds == {"consent", "safeguarding", "statutory"}


def _segment(part: str) -> Any:
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def test_every_token_the_broker_sent_validates_and_binds_its_body(
        captured: list[dict[str, Any]]) -> None:
    import hashlib

    for exchange in captured:
        scheme, token = exchange["authorization"].split(" ", 1)
        assert scheme == "Bearer"
        header, claims, _ = token.split(".")
        document = {"header": _segment(header), "claims": _segment(claims)}
        assert problems(TOKEN, document) == [], document
        digest = base64.urlsafe_b64encode(hashlib.sha256(exchange["body"]).digest())
        assert document["claims"]["bh"] == digest.rstrip(b"=").decode()
        assert document["claims"]["exp"] - document["claims"]["iat"] <= 120


def test_every_answer_the_kits_sent_validates_and_each_kind_was_seen(
        captured: list[dict[str, Any]]) -> None:
    seen = answers(captured)
    for answer in seen:
        assert problems(ANSWER, answer) == [], answer
    assert any(a["status"] == "match" and a["professionals"] and a.get("record_ref")
               for a in seen)
    assert any(a["status"] == "match" and not a["professionals"] and a["notice"]
               for a in seen), "a shielded child's answer"
    assert any(a["status"] == "no_match" and not a.get("notice") for a in seen)
    assert any(a["status"] == "no_match" and a.get("ask_for") for a in seen), "a possible match"


def signed(fed: Federation, body: bytes, audience: str) -> dict[str, str]:
    token = fed.app.extensions["federator"].keys.sign(body, audience)
    return {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}


def test_the_kits_refusals_validate_against_the_error_schema(
        fed: Federation, captured: list[dict[str, Any]]) -> None:
    authority = next(a.authority.id for a in fed.files.adapters if a.should_start)
    url = fed.kit_urls[authority] + "/lookup"
    real = json.loads(captured[0]["body"])
    bad = json.dumps({**real, "purpose": None}).encode()
    refusals = [
        requests.post(url, data=captured[0]["body"], timeout=10),  # no token: 401
        requests.post(url, data=bad, headers=signed(fed, bad, authority), timeout=10),  # 400
        requests.post(url, data=b"x" * 70000, timeout=10),  # 413
    ]
    body = json.dumps(real).encode()
    headers = signed(fed, body, authority)
    assert requests.post(url, data=body, headers=headers, timeout=10).status_code == 200
    refusals.append(requests.post(url, data=body, headers=headers, timeout=10))  # replay: 401
    assert [r.status_code for r in refusals] == [401, 400, 413, 401]
    for response in refusals:
        assert problems(ERROR, response.json()) == [], response.text
    assert refusals[1].json()["fields"] == {"purpose": ["Field may not be null."]}
    assert refusals[3].json()["error"] == "replayed request"


# --------------------------------------------------------------------------
# The schemas refuse what is broken, one field at a time
# --------------------------------------------------------------------------

@pytest.mark.parametrize("name", REQUEST_BREAKS)
def test_the_request_schema_refuses_a_request_broken_in_one_field(
        captured: list[dict[str, Any]], name: str) -> None:
    real = next(json.loads(x["body"]) for x in captured
                if json.loads(x["body"])["basis"]["type"] == "consent"
                and json.loads(x["body"])["child"]["nhs_number"])
    assert problems(REQUEST, real) == []
    broken = copy.deepcopy(real)
    REQUEST_BREAKS[name](broken)
    assert problems(REQUEST, broken) != [], f"{name}: accepted"


@pytest.mark.parametrize("name", ANSWER_BREAKS)
def test_the_answer_schema_refuses_an_answer_broken_in_one_field(
        captured: list[dict[str, Any]], name: str) -> None:
    real = next(a for a in answers(captured) if a["status"] == "match" and a["professionals"])
    assert problems(ANSWER, real) == []
    broken = copy.deepcopy(real)
    ANSWER_BREAKS[name](broken)
    assert problems(ANSWER, broken) != [], f"{name}: accepted"
