"""Witnessed checkpoints through the real parts (identity provider, broker, adapter
kits and SMTP on loopback): every lookup carries the broker's latest signed
checkpoint, the kits check it extends the one they hold, and what they hold
catches tampering that the trail's own checkpoints cannot, on copies of a real
trail (SQLite and PostgreSQL) and on a live broker whose trail was cut."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from click.testing import CliRunner
from sqlalchemy import Engine, delete, insert, select
from support.budget import UNLIMITED
from support.insider import insider

from adapters.kit.witness import Witness
from federator.audit.chain import GENESIS, INDEXED, canonical, record_hash
from federator.audit.checkpoints import open_checkpoint
from federator.audit.merkle import verify_consistency
from federator.audit.tables import (
    audit_authorities,
    audit_checkpoints,
    audit_child_refs,
    audit_flags,
)
from federator.cli import main
from federator.config import Settings
from federator.demo.federation import Federation, start_federation
from federator.demo.mail import ADMIN_MAILBOX
from federator.storage import audit_records, make_engine, upgrade

pytestmark = pytest.mark.integration
TABLES = (audit_records, audit_checkpoints, audit_authorities, audit_flags, audit_child_refs)


def federation(directory: Path) -> Federation:
    return start_federation(directory, authorities=4, base=Settings(
        database_url=f"sqlite:///{directory / 'broker.sqlite'}", audit_checkpoint_every=3,
        audit_checkpoint_interval_s=0, **UNLIMITED))


def lookup(fed: Federation, n: int = 3) -> None:
    token = fed.token()
    children = [c for c in fed.world.children if c.known_to and not c.shielded]
    for child in children[:n]:
        response = requests.post(f"{fed.broker.url}/api/v1/lookups", timeout=30, json={
            "child": {"nhs_number": child.nhs_number, "postcodes": list(child.postcodes)},
            "purpose": "Assessment under section 17: finding services already involved",
            "basis": {"type": "statutory", "power": "children-act-1989-s17",
                      "reference": "CASE-1"},
            "scope": "all", "scope_reason": "Every kit is to witness the checkpoint",
            "include_past": True},
            headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 200, response.text


def witnesses(fed: Federation) -> dict[str, Witness]:
    found = {}
    for served in fed.kit_threads:
        kit = served.server.app.extensions["federator_kit"]
        found[kit["settings"].authority_id] = kit["witness"]
    return found


def settle(fed: Federation) -> dict[str, Witness]:
    held = witnesses(fed)
    for witness in held.values():
        assert witness.wait_idle(30)
    return held


def health(fed: Federation, authority: str) -> dict[str, Any]:
    return requests.get(f"{fed.kit_urls[authority]}/health", timeout=5).json()


def keys_file(fed: Federation, directory: Path) -> Path:
    path = directory / "federator-keys.json"
    path.write_text(requests.get(f"{fed.broker.url}/.well-known/federator-keys.json",
                                 timeout=5).text)
    return path


def verify(url: str, *args: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    """``federator audit verify`` as an outside auditor runs it: production, no secrets."""
    for name in ("FEDERATOR_SECRET_KEY", "FEDERATOR_AUDIT_KEY", "FEDERATOR_SIGNING_KEY_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("FEDERATOR_ENV", "production")
    monkeypatch.setenv("FEDERATOR_DATABASE_URL", url)
    return CliRunner().invoke(main, ["audit", "verify", *args])


# -- the broker's public side, and the kits holding what it signed ------------------------


@pytest.fixture(scope="module")
def fed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Federation]:
    federation_ = federation(tmp_path_factory.mktemp("witnessed"))
    lookup(federation_)
    settle(federation_)
    yield federation_
    federation_.stop()


def test_the_public_api_serves_checkpoints_and_proofs_without_a_sign_in(fed: Federation):
    trail = fed.app.extensions["federator"].trail
    before = trail.verify().count
    latest = requests.get(f"{fed.broker.url}/api/v1/transparency/checkpoint", timeout=5)
    assert latest.status_code == 200
    jwks = requests.get(f"{fed.broker.url}/.well-known/federator-keys.json", timeout=5).json()
    checkpoint = open_checkpoint(latest.json()["signed"], jwks)
    proof = requests.get(f"{fed.broker.url}/api/v1/transparency/consistency", timeout=5,
                         params={"first": 3, "second": checkpoint.tree_size}).json()
    older = trail.covering(3)
    verify_consistency(3, checkpoint.tree_size, [bytes.fromhex(p) for p in proof["proof"]],
                       bytes.fromhex(older.root_hash), bytes.fromhex(checkpoint.root_hash))
    assert set(proof) == {"first", "second", "proof", "frontier"}  # hashes, nothing else
    beyond = requests.get(f"{fed.broker.url}/api/v1/transparency/consistency", timeout=5,
                          params={"first": 1, "second": checkpoint.tree_size + 50})
    assert beyond.status_code == 404
    bad = requests.get(f"{fed.broker.url}/api/v1/transparency/consistency", timeout=5,
                       params={"first": "x", "second": 3})
    assert bad.status_code == 422 and "first" in bad.text
    assert trail.verify().count == before  # public reads are not written to the trail


def test_every_kit_asked_holds_a_checkpoint_the_broker_signed(fed: Federation):
    trail = fed.app.extensions["federator"].trail
    for authority, witness in settle(fed).items():
        state = witness.store.read()
        assert state["status"] == "consistent", (authority, state)
        held = state["checkpoint"]
        assert trail.covering(held["tree_size"]).signed == held["signed"]
        assert held["frontier"]  # checked against the signed root when it was held
        assert health(fed, authority)["witness"] == "consistent"
        assert Path(witness.store.path).exists()  # the demo kits keep it in a file


def test_witness_show_prints_what_verify_reads(fed: Federation, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch):
    from adapters.kit.cli import main as kit_main

    adapter = next(a for a in fed.files.adapters if a.authority.id in witnesses(fed))
    shown = CliRunner().invoke(
        kit_main, ["witness", "show", "--config", str(adapter.settings_path)])
    assert shown.exit_code == 0, shown.output
    held = tmp_path / "held.json"
    held.write_text(shown.stdout)
    assert json.loads(shown.stdout)["signed"]
    assert "witness: consistent" in shown.stderr
    result = verify(fed.settings.sqlalchemy_url, "--checkpoint", str(held), "--keys",
                    str(keys_file(fed, tmp_path)), monkeypatch=monkeypatch)
    assert result.exit_code == 0, result.output
    assert "1 held checkpoint contained" in result.output


# -- tampering on copies of the real trail ---------------------------------------------------


def copy_trail(source: Engine, url: str) -> Engine:
    engine = make_engine(url)
    upgrade(engine)
    with source.connect() as src, engine.begin() as dst:
        for table in TABLES:
            rows = [dict(r) for r in src.execute(select(table)).mappings()]
            if rows:
                dst.execute(insert(table), rows)
    return engine


def bodies(engine: Engine) -> list[dict[str, Any]]:
    """Each record's body, with the sealed free text beside it (``TEXTS``) that a
    rechaining insider carries along."""
    with engine.connect() as conn:
        return [{**json.loads(row.body), TEXTS: row.texts} for row in conn.execute(
            select(audit_records.c.body, audit_records.c.texts).order_by(audit_records.c.seq))]


TEXTS = "__texts"


def rechain(engine: Engine, records: list[dict[str, Any]], *, keep_checkpoints_to: int = 0
            ) -> None:
    """What an insider with write access does to cover an edit: renumber, recompute
    every hash, and drop the checkpoints that would give it away."""
    prev, rows = GENESIS, []
    for seq, record in enumerate(records, start=1):
        record = dict(record)
        texts = record.pop(TEXTS, None)
        body = canonical({**record, "seq": seq})
        digest = record_hash(prev, body)
        rows.append({"seq": seq, "at": record["at"], "event": record["event"], "body": body,
                     "prev_hash": prev, "hash": digest, "texts": texts,
                     **{k: record.get(k) for k in INDEXED}})
        prev = digest
    with insider(engine) as conn:
        conn.execute(delete(audit_records))
        conn.execute(insert(audit_records), rows)
        conn.execute(delete(audit_checkpoints).where(
            audit_checkpoints.c.tree_size > keep_checkpoints_to))


def edit(engine: Engine, held: int) -> None:
    from sqlalchemy import update

    with insider(engine) as conn:
        body = json.loads(conn.execute(select(audit_records.c.body).where(
            audit_records.c.seq == 2)).scalar_one())
        conn.execute(update(audit_records).where(audit_records.c.seq == 2).values(
            body=canonical({**body, "purpose": "Something else"})))


def delete_one(engine: Engine, held: int) -> None:
    with insider(engine) as conn:
        conn.execute(delete(audit_records).where(audit_records.c.seq == held - 1))


def insert_and_rechain(engine: Engine, held: int) -> None:
    records = bodies(engine)
    rechain(engine, [*records[:1], {**records[1], "lookup_id": "L-inserted"}, *records[1:]])


def reorder_and_rechain(engine: Engine, held: int) -> None:
    records = bodies(engine)
    records[1], records[2] = records[2], records[1]
    rechain(engine, records)


def truncate_the_tail(engine: Engine, held: int) -> None:
    with insider(engine) as conn:
        conn.execute(delete(audit_records).where(audit_records.c.seq > held - 2))
        conn.execute(delete(audit_checkpoints).where(audit_checkpoints.c.tree_size > held - 2))


def drop_checkpoints_and_rechain(engine: Engine, held: int) -> None:
    records = bodies(engine)
    records[3] = {**records[3], "purpose": "Something else"}
    rechain(engine, records)


def changed(record: int) -> Callable[[str], bool]:
    """The verdict names a range of records, the held checkpoint's (narrowed by the
    frontier the kit holds beside it), holding ``record``."""
    def named(output: str) -> bool:
        found = re.search(r"BROKEN at record (\d+): records (\d+) to (\d+) differ from the "
                          r"checkpoint in \S+kit-witness.json", output)
        return bool(found) and int(found[2]) <= record <= int(found[3]) \
            and found[1] == found[2]
    return named


def said(text: Callable[[int], str]) -> Callable[[int], Callable[[str], bool]]:
    return lambda held: lambda output: text(held) in output


TAMPERING: dict[str, tuple[Callable[[Engine, int], None], bool, Any]] = {
    # name: (tampering, caught without a held checkpoint, what verify says with it)
    "edit": (edit, True, said(lambda h: "BROKEN at record 2: record content does not match")),
    "delete": (delete_one, True, said(lambda h: f"BROKEN at record {h - 1}: record {h - 1} "
                                                "is missing")),
    "insert": (insert_and_rechain, False, lambda h: changed(2)),
    "reorder": (reorder_and_rechain, False, lambda h: changed(2)),
    "truncate the tail": (truncate_the_tail, False, said(lambda h: (
        f"BROKEN at record {h - 1}: record {h - 1} is missing: the checkpoint in"))),
    "drop checkpoints and re-chain": (drop_checkpoints_and_rechain, False,
                                      lambda h: changed(4)),
}


@pytest.mark.parametrize("tampering", list(TAMPERING))
def test_tampering_on_a_copy_is_caught_by_a_witness_checkpoint(
        fed: Federation, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        tampering: str):
    witness = next(iter(settle(fed).values()))
    held = witness.store.read()["checkpoint"]
    held_file = tmp_path / "kit-witness.json"
    held_file.write_text(json.dumps(held))
    keys = keys_file(fed, tmp_path)
    copy = copy_trail(fed.app.extensions["federator"].engine, database_url)
    try:
        change, caught_anyway, expected = TAMPERING[tampering]
        change(copy, held["tree_size"])
    finally:
        copy.dispose()
    plain = verify(database_url, "--keys", str(keys), monkeypatch=monkeypatch)
    assert (plain.exit_code == 1) is caught_anyway, plain.output
    result = verify(database_url, "--keys", str(keys), "--checkpoint", str(held_file),
                    monkeypatch=monkeypatch)
    assert result.exit_code == 1, result.output
    assert expected(held["tree_size"])(result.output), result.output


# -- a live broker whose trail was cut ------------------------------------------------------


def test_a_cut_broker_trail_is_named_by_both_kits(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch):
    live = federation(tmp_path / "fed")
    try:
        lookup(live)
        held = {a: w.store.read()["checkpoint"] for a, w in settle(live).items()}
        assert len(held) >= 2
        cut = min(h["tree_size"] for h in held.values()) - 2
        with insider(live.app.extensions["federator"].engine) as conn:
            for table in (audit_records, audit_authorities, audit_flags, audit_child_refs):
                conn.execute(delete(table).where(table.c.seq > cut))
            conn.execute(delete(audit_checkpoints).where(audit_checkpoints.c.tree_size > cut))
        assert live.app.extensions["federator"].trail.verify().ok  # the trail alone: fine
        time.sleep(1.1)  # the broker processes' copy of the latest checkpoint expires
        lookup(live, n=2)  # the cut trail grows again, with new checkpoints
        kits = settle(live)
        for authority in kits:
            assert health(live, authority)["witness"] == "inconsistent", authority
            state = kits[authority].store.read()
            assert state["checkpoint"] == held[authority]  # the evidence stays as it was
            assert "does not extend" in state["problem"]["reason"] \
                or "can no longer prove" in state["problem"]["reason"]
        mail = live.mail.catcher.wait_for(len(kits), timeout_s=20) if live.mail else []
        told = {m["To"] for m in mail if "audit trail was rewritten" in m["Subject"]}
        assert told == {ADMIN_MAILBOX.format(authority=a) for a in kits}
        keys = keys_file(live, tmp_path)
        for authority, checkpoint in held.items():
            path = tmp_path / f"{authority}.json"
            path.write_text(json.dumps(checkpoint))
            result = verify(live.settings.sqlalchemy_url, "--keys", str(keys),
                            "--checkpoint", str(path), monkeypatch=monkeypatch)
            assert result.exit_code == 1, result.output
            assert f"differ from the checkpoint in {path}" in result.output \
                or "is missing" in result.output
    finally:
        live.stop()
