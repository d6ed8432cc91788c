"""One authority's adapter turned hostile, over real HTTP on loopback, in a whole
federation (identity provider, broker, the demo's kits): what its answers can no
longer do. Its id sorts first (``aaa-attacker``) and it covers every council.

- It reports a real professional's registration number with its own phone and
  e-mail: the card keeps the genuine contact; the attacker's shows only under
  the attacker's name.
- Its e-mail that copies someone (``?bcc=``), phone that is not a phone number and
  dates that are not dates: those professionals are left out, the outcome says
  how many and why, and nothing of them reaches the page or the logs.
- 25,000 professionals in 1 MiB: 200 are read, the outcome says the rest were
  left out; an endless header: refused with its reason, the others still answer.
"""

from __future__ import annotations

import html
import json
import logging
import re
import time
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from support.budget import UNLIMITED
from support.fault_server import FaultServer

from adapters.protocol import PROTOCOL
from federator.config import Settings
from federator.demo.federation import Federation, start_federation
from federator.demo.files import toml_array_of_tables
from federator.demo.model import Child, Involvement

pytestmark = pytest.mark.integration

ATTACKER, ATTACKER_NAME = "aaa-attacker", "Attacker Borough Services"
EVIL_PHONE, EVIL_EMAIL = "0800 000 666", "sam@evil.example"
HTML = {"Accept": "text/html"}


class Hostile(FaultServer):
    """Answers each lookup with ``script(lookup_id)``: a JSON-able answer, or a
    callable that writes to the handler itself."""

    script: Callable[[str], Any] = staticmethod(lambda lookup_id: {
        "lookup_id": lookup_id, "status": "no_match", "confidence": 0.0})

    def answer(self, h: Any, fault: str, lookup_id: str) -> None:
        reply = self.script(lookup_id)
        if callable(reply):
            reply(h)
        else:
            h._send(200, reply)


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Federation, Hostile]]:
    directory = tmp_path_factory.mktemp("hostile")
    server = Hostile("script")
    from federator.demo.places import COUNCILS
    seed = directory / "attacker.toml"
    seed.write_text(toml_array_of_tables("endpoint", [{
        "id": ATTACKER, "name": ATTACKER_NAME, "code": "E99000001",
        "coverage": [c.code for c in COUNCILS], "protocol": PROTOCOL, "url": server.url,
        "timeout_ms": 10000, "contact": "Attacker desk"}]), encoding="utf-8")
    try:
        fed = start_federation(directory / "demo", extra_seed=seed, notify="off", base=Settings(
            **UNLIMITED, deadline_default_ms=5000))
        yield fed, server
        fed.stop()
    finally:
        server.stop()


@pytest.fixture
def attacker(hostile: tuple[Federation, Hostile]) -> Iterator[Hostile]:
    yield hostile[1]
    hostile[1].script = Hostile.script  # type: ignore[method-assign]


def target(fed: Federation) -> tuple[Child, Involvement]:
    """A child and a current, named, registered professional at a normal council."""
    normal = {a.id for a in fed.world.authorities if a.behaviour == "normal" and not a.national}
    for child in fed.world.children:
        if child.shielded:
            continue
        for inv in fed.world.involvements_for(child.child_ref):
            if (inv.authority_id in normal and inv.current and not inv.sensitive
                    and inv.professional_name and inv.registration_number and inv.phone
                    and inv.email):
                return child, inv
    raise AssertionError("no child with a registered professional at a normal council")


def wire(inv: Involvement, **over: Any) -> dict[str, Any]:
    return {"name": inv.professional_name, "role": inv.role, "service": inv.service,
            "organisation": inv.organisation, "team": inv.team,
            "registration_number": inv.registration_number, "phone": inv.phone,
            "email": inv.email, "current": True,
            "from": inv.from_.isoformat() if inv.from_ else None, **over}


def consent() -> dict[str, Any]:
    return {"type": "consent", "given_by": "parent",
            "given_on": (date.today() - timedelta(days=3)).isoformat(),
            "reference": "CASE-123", "covers_sensitive_services": False}


def api_lookup(fed: Federation, child: Child, area: str) -> dict[str, Any]:
    response = requests.post(f"{fed.broker.url}/api/v1/lookups", timeout=60, headers={
        "Authorization": f"Bearer {fed.token()}"}, json={
        "child": {"nhs_number": child.nhs_number}, "areas": [area],
        "purpose": "Assessment under section 17: finding services already involved",
        "basis": consent(), "include_past": True})
    assert response.status_code == 200, response.text
    return dict(response.json())


def page_lookup(fed: Federation, child: Child, area: str) -> str:
    client = fed.app.test_client()
    with client.session_transaction() as s:
        s["principal"] = {"id": "user-web", "name": "Pat Web", "roles": ["practitioner"],
                          "organisation": "Leeds", "job_title": "Social worker"}
        s["signed_in_at"] = s["last_seen"] = time.time()
    form = client.get("/lookups/new", headers=HTML).get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', form) or \
        re.search(r'name="csrf_token" value="([^"]+)"', form)
    assert token
    given = date.today() - timedelta(days=2)
    page = client.post("/lookups/new", headers=HTML, data={
        "csrf_token": token.group(1), "nhs_number": child.nhs_number, "areas": area,
        "purpose": "Finding services already involved", "basis_type": "consent",
        "given_by": "parent", "given_on": [str(given.day), str(given.month), str(given.year)],
        "consent_reference": "CASE-88", "include_past": "y"})
    assert page.status_code == 200, page.get_data(as_text=True)[:2000]
    return html.unescape(page.get_data(as_text=True))


def outcome(answer: dict[str, Any], authority: str) -> dict[str, Any]:
    [entry] = [a for a in answer["authorities"] if a["id"] == authority]
    return entry


def card(page: str, name: str) -> str:
    """The summary card titled ``name``."""
    [start] = [m.end() for m in re.finditer(
        r'govuk-summary-card__title">\s*' + re.escape(name) + r"\s*<", page)]
    end = page.find('govuk-summary-card__title"', start)
    return page[start:end if end != -1 else len(page)]


# -- no contact hijack -----------------------------------------------------------------


def test_a_hijacked_registration_number_keeps_the_genuine_contact_first(
        hostile: tuple[Federation, Hostile], attacker: Hostile) -> None:
    fed, _ = hostile
    child, inv = target(fed)
    council = fed.world.authority(inv.authority_id)
    attacker.script = lambda lookup_id: {  # type: ignore[method-assign]
        "lookup_id": lookup_id, "status": "match", "confidence": 1.0,
        "professionals": [wire(inv, phone=EVIL_PHONE, email=EVIL_EMAIL)]}

    answer = api_lookup(fed, child, council.code)
    assert outcome(answer, ATTACKER)["outcome"] == "match"
    [entry] = [p for p in answer["professionals"] if p["name"] == inv.professional_name]
    assert (entry["phone"], entry["email"]) == (inv.phone, inv.email)
    assert entry["contacts"][0] == {"phone": inv.phone, "email": inv.email,
                                    "sources": [council.id]}
    assert {"phone": EVIL_PHONE, "email": EVIL_EMAIL, "sources": [ATTACKER]} in entry["contacts"]
    assert sorted(entry["sources"]) == sorted([ATTACKER, council.id])

    page = card(page_lookup(fed, child, council.code), inv.professional_name)
    lines = re.findall(r'<p class="[^"]*app-contact">(.*?)</p>', page, re.S)
    genuine = [line for line in lines if inv.phone in line]
    hijack = [line for line in lines if EVIL_PHONE in line]
    assert len(genuine) == 1 and len(hijack) == 1, lines
    assert f"Given by {council.name}" in genuine[0] and ATTACKER_NAME not in genuine[0]
    assert f"Given by {ATTACKER_NAME}" in hijack[0] and council.name not in hijack[0]
    assert EVIL_EMAIL in hijack[0] and EVIL_EMAIL not in genuine[0]
    assert page.index(inv.phone) < page.index(EVIL_PHONE)


# -- fields are what they claim -----------------------------------------------------------


def test_professionals_whose_fields_lie_are_left_out_and_counted(
        hostile: tuple[Federation, Hostile], attacker: Hostile,
        caplog: pytest.LogCaptureFixture) -> None:
    fed, _ = hostile
    child, inv = target(fed)
    council = fed.world.authority(inv.authority_id)
    good = {"name": "Rowan Plain", "role": "Family support worker", "phone": "0113 000 0001",
            "email": "rowan.plain@attacker.example", "current": True}
    attacker.script = lambda lookup_id: {  # type: ignore[method-assign]
        "lookup_id": lookup_id, "status": "match", "confidence": 1.0, "professionals": [
            {**good, "name": "Bcc Copier", "email": "a@x.invalid?bcc=attacker@evil.example"},
            {**good, "name": "Script Phone", "phone": "javascript:alert(1)", "email": None},
            {**good, "name": "Vague Date", "from": "yesterday"},
            good]}

    with caplog.at_level(logging.DEBUG):
        answer = api_lookup(fed, child, council.code)
    entry = outcome(answer, ATTACKER)
    assert entry["outcome"] == "match"
    assert entry["detail"] == ("3 professionals left out: invalid email (1); invalid from (1); "
                               "invalid phone (1)")
    names = {p["name"] for p in answer["professionals"]}
    assert "Rowan Plain" in names and not names & {"Bcc Copier", "Script Phone", "Vague Date"}
    trail = fed.app.extensions["federator"].trail
    done = trail.records(lookup_id=answer["lookup_id"])[-1]
    kept = {o["id"]: o for o in done["outcomes"]}[ATTACKER]
    assert (kept["professionals"], kept["dropped"]) == (1, 3)
    for value in ("evil.example", "javascript", "Bcc Copier", "yesterday"):
        assert value not in caplog.text and value not in json.dumps(done), value

    page = page_lookup(fed, child, council.code)
    assert "bcc" not in page and "evil.example" not in page and "javascript:" not in page
    assert "Not listed: 3 professionals left out" in page and "Rowan Plain" in page


# -- bounded work per answer -----------------------------------------------------------------


def test_twenty_five_thousand_professionals_are_read_two_hundred_at_most(
        hostile: tuple[Federation, Hostile], attacker: Hostile) -> None:
    fed, _ = hostile
    child, inv = target(fed)
    council = fed.world.authority(inv.authority_id)
    many = [{"name": f"P{i:05d}", "phone": "111"} for i in range(25_000)]
    raw = json.dumps({"lookup_id": "X", "status": "match", "professionals": many})
    assert len(raw) <= 1024 * 1024  # fits under the answer's byte cap
    attacker.script = lambda lookup_id: {  # type: ignore[method-assign]
        "lookup_id": lookup_id, "status": "match", "confidence": 1.0, "professionals": many}

    answer = api_lookup(fed, child, council.code)
    entry = outcome(answer, ATTACKER)
    assert entry["outcome"] == "match"
    assert entry["detail"] == ("24800 professionals left out: more than 200 in one answer "
                               "(24800)")
    theirs = [p for p in answer["professionals"] if p["sources"] == [ATTACKER]]
    assert len(theirs) == 200
    assert outcome(answer, council.id)["outcome"] == "match"  # the others still answer

    page = page_lookup(fed, child, council.code)
    shown = int(re.search(r"Working with the child now \((\d+)\)", page).group(1))  # type: ignore[union-attr]
    assert 200 <= shown <= 1000


def test_an_endless_header_is_that_authoritys_error_and_the_rest_answer(
        hostile: tuple[Federation, Hostile], attacker: Hostile) -> None:
    fed, _ = hostile
    child, inv = target(fed)
    council = fed.world.authority(inv.authority_id)

    def endless(h: Any) -> None:
        h.wfile.write(b"HTTP/1.1 200 OK\r\nX-Endless: ")
        try:
            for _ in range(2048):  # 128 MiB unless the broker hangs up
                h.wfile.write(b"a" * 65536)
        except OSError:
            pass
        h.close_connection = True

    attacker.script = lambda lookup_id: endless  # type: ignore[method-assign]
    answer = api_lookup(fed, child, council.code)
    entry = outcome(answer, ATTACKER)
    assert (entry["outcome"], entry["detail"]) == (
        "error", "answer headers larger than 16384 bytes")
    assert outcome(answer, council.id)["outcome"] == "match"
    assert inv.professional_name in {p["name"] for p in answer["professionals"]}


def test_the_setting_reaches_the_clients(tmp_path: Path) -> None:
    from federator import create_app

    app = create_app(Settings(env="development", instance_dir=tmp_path, max_professionals=7,
                              database_url=f"sqlite:///{tmp_path / 'f.sqlite'}").checked(),
                     migrate=True)
    clients = app.extensions["federator"].lookups.dispatcher.clients
    assert {c.max_professionals for c in clients.values()} == {7}
    app.extensions["federator"].engine.dispose()
