"""``/api/v1/audit``: through the real parts (identity provider, broker, kits over
HTTP on loopback). Only auditors reach the trail; an authority administrator sees
only the lookups that reached its own authority; every auditor action is audited."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import update
from support.insider import insider

from federator.audit.checkpoints import BadCheckpoint, open_checkpoint
from federator.audit.merkle import ProofError, verify_consistency, verify_inclusion
from federator.config import Settings
from federator.demo.federation import Federation, start_federation
from federator.storage import audit_records

pytestmark = pytest.mark.integration

AUDITOR_ROUTES = [
    ("GET", "/api/v1/audit/records", None),
    ("GET", "/api/v1/audit/records/1", None),
    ("GET", "/api/v1/audit/verify", None),
    ("POST", "/api/v1/audit/check-child", {"child": {"nhs_number": "9434765919"}}),
    ("GET", "/api/v1/audit/export?from=2026-01-01&to=2030-01-01", None),
    ("GET", "/api/v1/audit/checkpoints/latest", None),
    ("GET", "/api/v1/audit/proofs/inclusion?seq=1", None),
    ("GET", "/api/v1/audit/proofs/consistency?first=1", None),
]
AUTHORITY_ROUTES = [("GET", "/api/v1/audit/authority/lookups", None),
                    ("GET", "/api/v1/audit/authority/lookups/x1/proof", None)]


@pytest.fixture(scope="module")
def fed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Federation]:
    directory: Path = tmp_path_factory.mktemp("audit-api")
    federation = start_federation(directory, base=Settings(
        database_url=f"sqlite:///{directory / 'broker.sqlite'}", audit_checkpoint_every=5))
    yield federation
    federation.stop()


@pytest.fixture(scope="module")
def tokens(fed: Federation) -> dict[str, str]:
    known = next(c for c in fed.world.children if c.known_to)
    return {"practitioner": fed.token("practitioner"), "auditor": fed.token("auditor"),
            "broker-admin": fed.token("broker-admin"),
            "authority-admin": fed.token(f"authority-admin:{known.known_to[0]}"),
            "other-authority-admin": fed.token("authority-admin:nowhere-cs")}


def call(fed: Federation, method: str, path: str, token: str | None, body: Any = None
         ) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.request(method, f"{fed.broker.url}{path}", json=body, headers=headers,
                            timeout=30)


def lookup_body(child: Any, **basis: Any) -> dict[str, Any]:
    return {"child": {"nhs_number": child.nhs_number, "postcodes": list(child.postcodes)},
            "purpose": "Assessment under section 17: finding services already involved",
            "basis": basis or {"type": "consent", "given_by": "parent",
                               "given_on": (date.today() - timedelta(days=1)).isoformat(),
                               "reference": "CASE-1"},
            "include_past": True}


@pytest.fixture(scope="module")
def looked_up(fed: Federation, tokens: dict[str, str]) -> dict[str, Any]:
    child = next(c for c in fed.world.children if c.known_to)
    plain = call(fed, "POST", "/api/v1/lookups", tokens["practitioner"], lookup_body(child))
    assert plain.status_code == 200, plain.text
    urgent = call(fed, "POST", "/api/v1/lookups", tokens["practitioner"], lookup_body(
        child, type="safeguarding",
        justification="Risk of significant harm if the family were told of this enquiry."))
    assert urgent.status_code == 200, urgent.text
    return {"child": child, "plain": plain.json(), "urgent": urgent.json()}


@pytest.mark.parametrize(("method", "path", "body"), AUDITOR_ROUTES)
@pytest.mark.parametrize("role", ["practitioner", "broker-admin", "authority-admin", None])
def test_auditor_routes_refuse_every_other_role(fed, tokens, method, path, body, role):
    response = call(fed, method, path, tokens[role] if role else None, body)
    assert response.status_code == (401 if role is None else 403), response.text


@pytest.mark.parametrize(("method", "path", "body"), AUTHORITY_ROUTES)
@pytest.mark.parametrize("role", ["practitioner", "broker-admin", "auditor", None])
def test_authority_view_refuses_every_other_role(fed, tokens, method, path, body, role):
    response = call(fed, method, path, tokens[role] if role else None, body)
    assert response.status_code == (401 if role is None else 403), response.text


def test_every_audit_route_is_in_the_openapi_document(fed):
    paths = requests.get(f"{fed.broker.url}/api/openapi.json", timeout=10).json()["paths"]
    for _, path, _ in AUDITOR_ROUTES + AUTHORITY_ROUTES:
        documented = path.split("?")[0].replace("/records/1", "/records/{seq}").replace(
            "/lookups/x1/", "/lookups/{lookup_id}/")
        assert documented in paths


def test_records_filter_and_page(fed, tokens, looked_up):
    auditor = tokens["auditor"]
    flagged = call(fed, "GET", "/api/v1/audit/records?flagged=true&event=lookup.requested",
                   auditor).json()["records"]
    assert looked_up["urgent"]["lookup_id"] in {r["lookup_id"] for r in flagged}
    assert looked_up["plain"]["lookup_id"] not in {
        r["lookup_id"] for r in flagged if "safeguarding_basis" in
        {f["flag"] for f in r["flags"]}}
    [urgent] = [r for r in flagged if r["lookup_id"] == looked_up["urgent"]["lookup_id"]]
    assert {"flag": "safeguarding_basis",
            "reason": "Safeguarding basis: consent was not sought."} in urgent["flags"]
    safeguarding = call(fed, "GET", "/api/v1/audit/records?basis=safeguarding", auditor).json()
    assert {r["basis_type"] for r in safeguarding["records"]} == {"safeguarding"}
    authority = looked_up["child"].known_to[0]
    by_authority = call(fed, "GET", f"/api/v1/audit/records?authority={authority}"
                        "&event=lookup.*", auditor).json()["records"]
    assert {r["lookup_id"] for r in by_authority} >= {looked_up["plain"]["lookup_id"]}
    assert call(fed, "GET", "/api/v1/audit/records?authority=nowhere-cs", auditor
                ).json()["records"] == []
    seen, cursor = [], None
    while True:
        page = call(fed, "GET", "/api/v1/audit/records?limit=2&sort=seq"
                    + (f"&cursor={cursor}" if cursor else ""), auditor).json()
        seen += [r["seq"] for r in page["records"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted(seen) and seen[0] == 1 and len(seen) == len(set(seen)) >= 6
    newest = call(fed, "GET", "/api/v1/audit/records?limit=1", auditor).json()["records"][0]
    assert newest["seq"] >= seen[-1]


def test_bad_filters_name_the_field(fed, tokens):
    response = call(fed, "GET", "/api/v1/audit/records?from=yesterday&limit=0&basis=x",
                    tokens["auditor"])
    assert response.status_code == 422
    assert set(response.json()["errors"]["query"]) == {"from", "limit", "basis"}
    child = call(fed, "POST", "/api/v1/audit/check-child", tokens["auditor"],
                 {"child": {"nhs_number": "9434765918"}})
    assert child.status_code == 422 and "nhs_number" in child.json()["errors"]["json"]["child"]


@pytest.mark.parametrize(("path", "field"), [
    ("/api/v1/audit/records?to=9999-12-31", "to"),
    ("/api/v1/audit/records?from=0001-01-01", "from"),
    ("/api/v1/audit/records?to=9999-12-31T23:59:59-05:00", "to"),
    ("/api/v1/audit/export?from=0001-01-01T00:00:00%2B05:00", "from"),
    ("/api/v1/audit/export?to=9999-12-31", "to"),
])
def test_dates_at_the_edges_of_the_calendar_name_the_field(fed, tokens, path, field):
    response = call(fed, "GET", path, tokens["auditor"])
    assert response.status_code == 422, response.text
    assert list(response.json()["errors"]["query"]) == [field]


def test_check_child_finds_its_lookups_by_identity(fed, tokens, looked_up):
    child = looked_up["child"]
    answer = call(fed, "POST", "/api/v1/audit/check-child", tokens["auditor"],
                  {"child": {"nhs_number": child.nhs_number}, "reason": "SAR-2026-0142"}).json()
    assert answer["searched"] == ["nhs_number"]
    ids = {r["lookup_id"] for r in answer["records"]}
    assert {looked_up["plain"]["lookup_id"], looked_up["urgent"]["lookup_id"]} <= ids
    other = next(c for c in fed.world.children if c.nhs_number != child.nhs_number)
    none = call(fed, "POST", "/api/v1/audit/check-child", tokens["auditor"],
                {"child": {"nhs_number": other.nhs_number}}).json()
    assert none["records"] == []
    assert child.nhs_number not in json.dumps(answer)


def test_record_detail_and_verify(fed, tokens, looked_up):
    seq = call(fed, "GET", "/api/v1/audit/records?event=lookup.requested&limit=1",
               tokens["auditor"]).json()["records"][0]["seq"]
    detail = call(fed, "GET", f"/api/v1/audit/records/{seq}", tokens["auditor"]).json()
    assert detail["record"]["seq"] == seq and len(detail["record"]["hash"]) == 64
    assert call(fed, "GET", "/api/v1/audit/records/999999", tokens["auditor"]
                ).status_code == 404
    verdict = call(fed, "GET", "/api/v1/audit/verify", tokens["auditor"]).json()
    assert verdict["ok"] is True and verdict["count"] > seq


def test_auditor_actions_are_audited(fed, tokens, looked_up):
    trail = fed.app.extensions["federator"].trail
    call(fed, "POST", "/api/v1/audit/check-child", tokens["auditor"],
         {"child": {"nhs_number": looked_up["child"].nhs_number}})
    call(fed, "GET", "/api/v1/audit/records?basis=consent", tokens["auditor"])
    events = [r for r in trail.records(limit=100000) if r["event"].startswith("audit.")]
    kinds = {r["event"] for r in events}
    assert {"audit.child_checked", "audit.records_listed"} <= kinds
    assert {r["actor_role"] for r in events if r["event"] != "audit.authority_viewed"} == {
        "auditor"}
    assert looked_up["child"].nhs_number not in json.dumps(events)


def test_export_carries_a_signed_checkpoint_that_covers_it(fed, tokens, looked_up):
    today = date.today().isoformat()
    for fmt in ("jsonl", "csv"):
        response = call(fed, "GET", f"/api/v1/audit/export?from={today}&to={today}"
                        f"&format={fmt}", tokens["auditor"])
        assert response.status_code == 200
        checkpoint = open_checkpoint(response.headers["Audit-Checkpoint"],
                                     fed.app.extensions["federator"].keys.jwks())
        if fmt == "jsonl":
            records = [json.loads(line) for line in response.text.splitlines()]
        else:
            records = [json.loads(row["body"]) | {"hash": row["hash"]}
                       for row in csv.DictReader(io.StringIO(response.text))]
        assert records and records[-1]["seq"] <= checkpoint.tree_size
        assert looked_up["plain"]["lookup_id"] in {r.get("lookup_id") for r in records}


def test_inclusion_and_consistency_proofs_verify_against_signed_roots(fed, tokens, looked_up):
    jwks = fed.app.extensions["federator"].keys.jwks()
    latest = call(fed, "GET", "/api/v1/audit/checkpoints/latest", tokens["auditor"]).json()
    proof = call(fed, "GET", "/api/v1/audit/proofs/inclusion?seq=2", tokens["auditor"]).json()
    signed = open_checkpoint(proof["checkpoint"]["signed"], jwks)
    verify_inclusion(1, signed.tree_size, bytes.fromhex(proof["leaf_hash"]),
                     [bytes.fromhex(p) for p in proof["proof"]], bytes.fromhex(signed.root_hash))
    first = signed.tree_size
    consistency = call(fed, "GET", f"/api/v1/audit/proofs/consistency?first={first}"
                       f"&second={latest['tree_size']}", tokens["auditor"]).json()
    old = open_checkpoint(consistency["first"]["signed"], jwks)
    new = open_checkpoint(consistency["second"]["signed"], jwks)
    verify_consistency(old.tree_size, new.tree_size,
                       [bytes.fromhex(p) for p in consistency["proof"]],
                       bytes.fromhex(old.root_hash), bytes.fromhex(new.root_hash))


def test_authority_admin_sees_only_lookups_that_reached_it(fed, tokens, looked_up):
    authority = looked_up["child"].known_to[0]
    mine = call(fed, "GET", "/api/v1/audit/authority/lookups", tokens["authority-admin"])
    assert mine.status_code == 200
    records = mine.json()["records"]
    assert looked_up["plain"]["lookup_id"] in {r["lookup_id"] for r in records}
    assert all(set(r) <= {"seq", "at", "event", "lookup_id", "actor_role",
                          "actor_organisation", "purpose", "basis_type", "outcome"}
               for r in records)
    outcomes = {a["id"]: a["outcome"] for a in looked_up["plain"]["authorities"]}
    [completed] = [r for r in records if r["event"] == "lookup.completed"
                   and r["lookup_id"] == looked_up["plain"]["lookup_id"]]
    assert completed["outcome"] == outcomes[authority]  # its own outcome, no other's
    other = call(fed, "GET", "/api/v1/audit/authority/lookups",
                 tokens["other-authority-admin"]).json()
    assert other["records"] == []


def test_tampering_shows_in_the_api_verify(fed, tokens, looked_up):
    engine = fed.app.extensions["federator"].engine
    with insider(engine) as conn:
        original = conn.execute(audit_records.select().where(audit_records.c.seq == 3)
                                ).mappings().one()
        conn.execute(update(audit_records).where(audit_records.c.seq == 3)
                     .values(body=original["body"].replace('"event"', '"event" ', 1)))
    try:
        verdict = call(fed, "GET", "/api/v1/audit/verify", tokens["auditor"]).json()
        assert verdict == {"ok": False, "count": 2, "seq": 3,
                           "reason": "record content does not match its hash"}
    finally:
        with insider(engine) as conn:
            conn.execute(update(audit_records).where(audit_records.c.seq == 3)
                         .values(body=original["body"]))
    assert call(fed, "GET", "/api/v1/audit/verify", tokens["auditor"]).json()["ok"] is True


def checked_receipt(receipt: dict[str, Any], jwks: dict[str, Any]) -> None:
    """What the authority does with the public keys alone; raises when it fails."""
    checkpoint = open_checkpoint(receipt["checkpoint"]["signed"], jwks)
    for record in receipt["records"]:
        verify_inclusion(record["leaf_index"], checkpoint.tree_size,
                         bytes.fromhex(record["leaf_hash"]),
                         [bytes.fromhex(p) for p in record["proof"]],
                         bytes.fromhex(checkpoint.root_hash))


def flipped(hex_text: str) -> str:
    return ("1" if hex_text[0] == "0" else "0") + hex_text[1:]


def test_an_authority_admin_gets_a_receipt_it_checks_with_the_public_keys(
        fed, tokens, looked_up):
    lookup_id = looked_up["plain"]["lookup_id"]
    response = call(fed, "GET", f"/api/v1/audit/authority/lookups/{lookup_id}/proof",
                    tokens["authority-admin"])
    assert response.status_code == 200, response.text
    receipt = response.json()
    assert [r["event"] for r in receipt["records"]] == ["lookup.requested", "lookup.completed"]
    assert all(set(r) <= {"seq", "at", "event", "lookup_id", "actor_role",
                          "actor_organisation", "purpose", "basis_type", "outcome",
                          "leaf_index", "leaf_hash", "proof"} for r in receipt["records"])
    outcomes = {a["id"]: a["outcome"] for a in looked_up["plain"]["authorities"]}
    assert receipt["records"][1]["outcome"] == outcomes[looked_up["child"].known_to[0]]
    jwks = requests.get(f"{fed.broker.url}/.well-known/federator-keys.json", timeout=10).json()
    assert jwks["keys"] and all("d" not in k for k in jwks["keys"])  # public halves only
    checked_receipt(receipt, jwks)
    record = receipt["records"][0]
    for field in ("leaf_hash", "proof", "leaf_index"):
        changed = json.loads(json.dumps(receipt))
        if field == "proof":
            changed["records"][0]["proof"][0] = flipped(record["proof"][0])
        elif field == "leaf_hash":
            changed["records"][0]["leaf_hash"] = flipped(record["leaf_hash"])
        else:
            changed["records"][0]["leaf_index"] = record["leaf_index"] + 1
        with pytest.raises(ProofError):
            checked_receipt(changed, jwks)
    forged = json.loads(json.dumps(receipt))
    header, payload, signature = receipt["checkpoint"]["signed"].split(".")
    forged["checkpoint"]["signed"] = ".".join([header, payload, flipped(signature)])
    with pytest.raises(BadCheckpoint):
        checked_receipt(forged, jwks)


def test_a_receipt_is_refused_for_a_lookup_that_did_not_reach_the_authority(
        fed, tokens, looked_up):
    lookup_id = looked_up["plain"]["lookup_id"]
    other = call(fed, "GET", f"/api/v1/audit/authority/lookups/{lookup_id}/proof",
                 tokens["other-authority-admin"])
    assert other.status_code == 404
    assert other.json()["message"] == "No such lookup reached your authority."
    unknown = call(fed, "GET", "/api/v1/audit/authority/lookups/no-such-lookup/proof",
                   tokens["authority-admin"])
    assert unknown.status_code == 404
