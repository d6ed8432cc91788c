"""A real kit over HTTP, its e-mail over real SMTP: a child known only through a
sensitive service the basis does not cover gets the answer a child not known
there gets, while that service's worker is told; and every e-mail says what the
kit actually sent, with a multi-line purpose quoted so it cannot forge lines."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import requests
from joserfc.jwk import ECKey
from support import kit_notify
from support.kit_notify import (
    AUTHORITY,
    HEADER,
    ISSUER,
    Kit,
    body_text,
    start_kit,
)

from adapters.protocol import encode_body, sign_request
from federator.demo.mail import MailCatcher

pytestmark = pytest.mark.integration

# the shared fixtures, under their own names
jwks = kit_notify.jwks
key = kit_notify.key
kits = kit_notify.kits

NURSE = "dana.nurse@health.example.invalid"
WORKER = "sam.patel@example.invalid"
ROWS = [
    # Dana: known here only through a sexual health nurse (sensitive).
    ["C-7", "9434765870", "Dana", "Quill", "2009-05-04", "LS7 3AB", "false", "",
     "Nia Holt", "Nurse", "sexual health", "true", "Test Health", "", "01632 960070", NURSE,
     "NMC7", "2026-01-05", "", ""],
    # Amara: a social worker (her allocated worker) and a current sensitive service.
    ["C-1", "9434765919", "Amara", "Okafor", "2015-03-12", "LS6 2AB", "false", "",
     "Sam Patel", "Social worker", "children's social care", "false", "Test Council", "",
     "01632 960001", WORKER, "", "2025-09-01", "", WORKER],
    ["C-1", "9434765919", "Amara", "Okafor", "2015-03-12", "LS6 2AB", "false", "",
     "Jo Reed", "Nurse", "substance misuse", "true", "Test Health", "", "01632 960002",
     "jo.reed@health.example.invalid", "", "2026-01-05", "", WORKER],
    # Cleo: shielded: a notice only.
    ["C-9", "", "Cleo", "Shield", "2012-07-07", "BD1 1AA", "true", "Call the duty manager",
     "Kim Lowe", "Social worker", "children's social care", "false", "Test Council", "",
     "01632 960004", "kim.lowe@example.invalid", "", "2024-01-01", "",
     "kim.lowe@example.invalid"],
    # Eli: known only through past involvement, which is not asked for.
    ["C-5", "", "Eli", "Past", "2011-01-01", "LS8 1AA", "false", "", "Ray Old",
     "Social worker", "children's social care", "false", "Test Council", "", "01632 960005",
     "", "", "2019-01-01", "2020-01-01", "ray.old@example.invalid"],
]
DANA = {"nhs_number": "9434765870", "given_name": "Dana", "family_name": "Quill",
        "date_of_birth": "2009-05-04", "postcodes": ["LS7 3AB"]}
NOBODY = {"nhs_number": "9434765838", "given_name": "Nemo", "family_name": "Nobody",
          "date_of_birth": "2010-10-10", "postcodes": ["YO1 1AA"]}
AMARA = {"nhs_number": "9434765919"}
CLEO = {"given_name": "Cleo", "family_name": "Shield", "date_of_birth": "2012-07-07",
        "postcodes": ["BD1 1AA"]}
ELI = {"given_name": "Eli", "family_name": "Past", "date_of_birth": "2011-01-01",
       "postcodes": ["LS8 1AA"]}
S17 = {"type": "statutory", "power": "children-act-1989-s17", "reference": "S17-1"}
S47 = {"type": "statutory", "power": "children-act-1989-s47", "reference": "S47-1"}


@pytest.fixture
def kit(tmp_path: Path, jwks: str, key: ECKey, kits: list[Kit]) -> Kit:
    path = tmp_path / "kit.csv"
    path.write_text("\n".join(",".join(r) for r in (HEADER, *ROWS)) + "\n", encoding="utf-8")
    started = start_kit(MailCatcher(), jwks, path, key)
    kits.append(started)
    return started


def without_id(answer: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in answer.items() if k != "lookup_id"}


def mail_to(kit: Kit, count: int) -> dict[str, str]:
    messages = kit.mail.catcher.wait_for(count)
    assert kit.notifier.wait_idle(10)
    time.sleep(0.2)
    assert len(kit.mail.catcher.messages) == count, [m["To"] for m in kit.mail.catcher.messages]
    return {str(m["To"]): body_text(m) for m in messages}


# -- sensitive involvement stays unseen ------------------------------------------------


def test_a_child_known_only_through_a_withheld_service_looks_not_known(kit: Kit) -> None:
    hidden = kit.lookup(DANA, basis=S17)
    unknown = kit.lookup(NOBODY, basis=S17)
    assert hidden.status_code == unknown.status_code == 200
    # every field the broker reads (status, notice, confidence, professionals, and
    # matched_on, ask_for, record_ref when a kit gives them) is the not-known answer's
    assert without_id(hidden.json()) == without_id(unknown.json())
    assert hidden.json()["status"] == "no_match"
    assert set(hidden.headers) == set(unknown.headers)
    # the basis that covers sensitive services shows the nurse
    shown = kit.lookup(DANA, basis=S47).json()
    assert shown["status"] == "match" and [p["name"] for p in shown["professionals"]] == [
        "Nia Holt"]


def test_a_near_miss_of_that_child_looks_not_known_too(kit: Kit) -> None:
    # An initial for a name and another postcode: a possible match with Dana, whose
    # "contact us to confirm" would say she is known here. Not with a covering basis.
    near = {"given_name": "D", "family_name": "Quill", "date_of_birth": "2009-05-04",
            "postcodes": ["LS9 9ZZ"]}
    unknown = without_id(kit.lookup({**near, "family_name": "Nobody"}, basis=S17).json())
    assert without_id(kit.lookup(near, basis=S17).json()) == unknown
    assert unknown["notice"] is None
    covered = kit.lookup(near, basis=S47).json()
    assert covered["status"] == "match" or covered["notice"], covered


def test_the_withheld_services_worker_is_told_of_the_lookup(kit: Kit) -> None:
    answer = kit.lookup(DANA, basis=S17).json()
    mail = mail_to(kit, 1)
    content = mail[NURSE]
    assert answer["lookup_id"] in content and "C-7" in content and "Pat Asker" in content
    assert "answered as it does for a child it does not know" in content
    assert "Federator told the person who asked how to reach" not in content
    for detail in ("Dana", "Quill", "9434765870", "S17-1"):
        assert detail not in content


def test_a_sensitive_service_withheld_beside_others_is_told_too(kit: Kit) -> None:
    answer = kit.lookup(AMARA, basis=S17).json()
    assert [p["name"] for p in answer["professionals"]] == ["Sam Patel"]
    mail = mail_to(kit, 2)
    assert "sent Federator how to reach 1 professional working with them" in mail[WORKER]
    withheld = mail["jo.reed@health.example.invalid"]
    assert "did not share your service's involvement" in withheld
    assert "It sent how to reach 1 professional of other services" in withheld


# -- the kit's e-mail tells the truth ------------------------------------------------------


def test_a_notice_only_answer_says_so(kit: Kit) -> None:
    assert kit.lookup(CLEO).json()["professionals"] == []
    content = mail_to(kit, 1)["kim.lowe@example.invalid"]
    assert "with a notice only: no professional's details were sent" in content
    assert "how to reach" not in content


def test_an_answer_withholding_everyone_says_so(kit: Kit) -> None:
    answer = kit.lookup(ELI, include_past=False).json()
    assert (answer["status"], answer["professionals"]) == ("match", [])
    content = mail_to(kit, 1)["ray.old@example.invalid"]
    assert "sent no professional's details: none fitted what was asked" in content


def test_an_answer_ready_after_the_request_expired_says_it_was_too_late(kit: Kit) -> None:
    body = encode_body({
        "lookup_id": "01J" + uuid.uuid4().hex[:20].upper(), "child": AMARA, "basis": S47,
        "purpose": "Section 47 enquiry: finding services already involved",
        "requester": {"id": "user-1", "name": "Pat Asker", "role": "Health visitor",
                      "organisation": "Neighbouring Trust"}, "include_past": True})
    # expired two seconds ago: inside the kit's leeway, so it answers, too late to be read
    token = sign_request(body, kit.key, issuer=ISSUER, audience=AUTHORITY, lifetime_s=60,
                         now=time.time() - 62)
    answer = requests.post(f"{kit.served.url}/lookup", data=body, timeout=10, headers={
        "Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    assert answer.status_code == 200 and answer.json()["status"] == "match"
    content = mail_to(kit, 1)[WORKER]
    assert "ready only after the request had expired" in content
    assert "the person who asked was not shown it" in content


def test_a_multi_line_purpose_cannot_forge_lines(kit: Kit) -> None:
    forged = ("Checking in\n"
              "Federator told the person who asked how to reach the professionals Notify "
              "Children's Services records for this child.\r\n"
              "Lawful basis:   safeguarding\u2028What we sent:   nothing at all")
    kit.lookup(CLEO, purpose=forged, requester={
        "id": "u", "name": "Pat\nLookup id:      01JFAKE", "role": "Visitor",
        "organisation": "Trust"})
    content = mail_to(kit, 1)["kim.lowe@example.invalid"]
    lines = content.splitlines()
    purpose = lines.index("Purpose, as the person who asked wrote it:")
    assert lines[purpose + 1:purpose + 5] == [
        "  > Checking in",
        "  > Federator told the person who asked how to reach the professionals Notify "
        "Children's Services records for this child.",
        "  > Lawful basis: safeguarding",
        "  > What we sent: nothing at all"]
    own = [line for line in lines if not line.startswith("  > ")]
    assert [line for line in own if line.startswith("Lawful basis:")] == [
        "Lawful basis:   statutory"]
    assert [line for line in own if line.startswith("What we sent:")] == [
        "What we sent:   Notify Children's Services answered that it knows this child with a "
        "notice only: no professional's details were sent."]
    assert [line for line in own if line.startswith("Lookup id:")] == [
        line for line in own if line.startswith("Lookup id:") and "01JFAKE" not in line]
    assert "Asked by:       Pat Lookup id: 01JFAKE" in lines
    assert not any(line.startswith("Federator told") for line in lines)
