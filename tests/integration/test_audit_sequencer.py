"""The lookup's records are queued, not waited for (PostgreSQL, issue 18): the
queue's commit is the durability point, a sequencer thread integrates them in
the background, and whatever reads the trail integrates what is queued first,
so nothing reads a lookup as missing. Real PostgreSQL; the broker over HTTP."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
import requests
from sqlalchemy import func, select, text
from support.services import postgres_schema
from support.web_client import HTML, signed_in

from federator.audit.tables import audit_queue
from federator.audit.trail import AuditTrail, AuditUnavailable
from federator.config import Settings
from federator.demo.federation import Federation, start_federation
from federator.storage import audit_records, make_engine, upgrade

pytestmark = pytest.mark.integration

FIELDS = {"actor_id": "jo", "actor_organisation": "Leeds", "basis": {"type": "consent"},
          "scope": "targeted", "child_pseudonym": "ab" * 32, "authorities": ["leeds-cs"]}


@pytest.fixture
def url() -> Iterator[str]:
    with postgres_schema() as schema_url:
        # named, so that a test can find (and cut) this trail's own connections
        yield f"{schema_url}&application_name=fedseq-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def trail(url: str) -> Iterator[AuditTrail]:
    engine = make_engine(url)
    upgrade(engine)
    yield AuditTrail(engine)
    engine.dispose()


def counts(trail: AuditTrail) -> tuple[int, int]:
    """(entries queued, records in the chain)"""
    with trail.engine.connect() as conn:
        return (conn.execute(select(func.count()).select_from(audit_queue)).scalar_one(),
                conn.execute(select(func.count()).select_from(audit_records)).scalar_one())


def test_enqueue_commits_the_entry_and_a_read_integrates_it_as_append_would(trail):
    trail.sequencer.wake = lambda: None  # no background integration: only the read's
    trail.enqueue("lookup.requested", lookup_id="q1", **FIELDS)
    assert counts(trail) == (1, 0)  # committed, not yet in the chain

    [record] = trail.records(lookup_id="q1")
    assert counts(trail) == (0, 1)
    appended = trail.append("lookup.requested", lookup_id="a1", **FIELDS)
    # the same record an append makes (numbered, flagged from the history, sealed)
    same = {k for k in record if k not in ("seq", "at", "hash", "prev_hash", "lookup_id")}
    assert {k: record[k] for k in same} == {k: appended[k] for k in same}
    assert appended["prev_hash"] == record["hash"]
    assert trail.verify().ok


def test_the_sequencer_integrates_in_the_background(trail):
    for i in range(40):
        trail.enqueue("lookup.requested", lookup_id=f"b{i}", **FIELDS)
    waited = time.monotonic() + 30
    while counts(trail) != (0, 40) and time.monotonic() < waited:
        time.sleep(0.05)
    assert counts(trail) == (0, 40)
    assert trail.sequencer.running()
    verdict = trail.verify()
    assert verdict.ok and verdict.count == 40


def test_a_connection_the_server_dropped_is_thrown_away_and_the_entry_written_once(trail, url):
    trail.sequencer.wake = lambda: None
    trail.enqueue("lookup.requested", lookup_id="c0", **FIELDS)  # the queue's pool is up
    name = url.rsplit("application_name=", 1)[1]
    admin = make_engine(url)
    with admin.connect() as conn:
        cut = conn.execute(text(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE application_name = :n AND pid <> pg_backend_pid()"), {"n": name}).scalar()
    admin.dispose()
    assert cut >= 1
    trail.enqueue("lookup.requested", lookup_id="c1", **FIELDS)  # retried on a new one
    assert counts(trail) == (2, 0)
    assert [r["lookup_id"] for r in trail.records(event="lookup.requested")] == ["c0", "c1"]


def test_an_entry_with_a_nul_is_refused_alone_and_never_queued(trail):
    with pytest.raises(AuditUnavailable):
        trail.enqueue("lookup.requested", lookup_id="n1", **{**FIELDS, "actor_id": "a\x00b"})
    trail.enqueue("lookup.requested", lookup_id="n2", **FIELDS)
    assert [r["lookup_id"] for r in trail.records(event="lookup.requested")] == ["n2"]


KILLED = """
import os, sys
from federator.audit.trail import AuditTrail
from federator.storage import make_engine
trail = AuditTrail(make_engine(sys.argv[1]))
trail.sequencer.wake = lambda: None  # killed before any integration
for i in range(20):
    trail.enqueue("lookup.requested", lookup_id=f"k{i}", actor_id="jo", scope="targeted")
os._exit(0)
"""


def test_entries_of_a_broker_that_died_before_integrating_them_are_not_lost(trail, url):
    subprocess.run([sys.executable, "-c", KILLED, url], check=True, timeout=120)
    assert counts(trail) == (20, 0)
    assert trail.integrate_pending() == 20
    assert counts(trail) == (0, 20)
    assert trail.verify().ok


# -- the broker: each lookup reads back at once ------------------------------------


@pytest.fixture(scope="module")
def fed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Federation]:
    with postgres_schema() as schema_url:
        directory: Path = tmp_path_factory.mktemp("sequencer")
        federation = start_federation(directory, base=Settings(database_url=schema_url))
        # the sequencer held back: only what reads the trail integrates
        federation.app.extensions["federator"].trail.sequencer.gather_s = 3600
        yield federation
        federation.stop()


def test_a_lookup_reads_back_at_once_on_the_receipt_and_the_auditors_api(fed):
    known = next(c for c in fed.world.children if c.known_to)
    practitioner = {"Authorization": f"Bearer {fed.token('practitioner')}"}
    auditor = {"Authorization": f"Bearer {fed.token('auditor')}"}
    answer = requests.post(f"{fed.broker.url}/api/v1/lookups", headers=practitioner, timeout=30,
                           json={"child": {"nhs_number": known.nhs_number,
                                           "postcodes": list(known.postcodes)},
                                 "purpose": "Assessment under section 17",
                                 "basis": {"type": "consent", "given_by": "parent",
                                           "given_on": date.today().isoformat(),
                                           "reference": "CASE-1"}})
    assert answer.status_code == 200, answer.text
    lookup_id = answer.json()["lookup_id"]
    trail = fed.app.extensions["federator"].trail
    assert counts(trail)[0] >= 2  # both records still queued: nothing else integrated them

    records = requests.get(f"{fed.broker.url}/api/v1/audit/records", headers=auditor,
                           params={"event": "lookup.completed"}, timeout=30)
    assert records.status_code == 200, records.text
    assert [r["lookup_id"] for r in records.json()["records"]] == [lookup_id]
    assert counts(trail)[0] == 0
    receipt = requests.get(f"{fed.broker.url}/api/v1/lookups/{lookup_id}/receipt",
                           headers=practitioner, timeout=30)
    assert receipt.status_code == 200, receipt.text


def test_my_recent_lookups_page_shows_a_lookup_still_queued(fed):
    """A page that neither appends nor reads through the trail's own methods (it
    queries the records table): only the integration before each request puts
    the queued lookup on it."""
    trail = fed.app.extensions["federator"].trail
    client = signed_in(fed.app, "practitioner")
    actor = {"actor_id": "practitioner-None", "actor_role": "practitioner",
             "actor_organisation": "Leeds"}
    trail.enqueue("lookup.requested", lookup_id="recent-1", **actor,
                  purpose="Assessment under section 17", basis_type="consent",
                  basis={"type": "consent", "reference": "CASE-QUEUED"},
                  authorities=["leeds-cs"])
    assert counts(trail)[0] >= 1
    page = client.get("/lookups/recent", headers=HTML)
    assert page.status_code == 200
    assert "CASE-QUEUED" in page.get_data(as_text=True)


def test_auditors_see_an_alert_for_a_queued_entry_set_aside(fed):
    """A row written into the queue by hand: the auditor's page is served (it used
    to fail on every read while the row stayed queued) and says what happened."""
    trail = fed.app.extensions["federator"].trail
    with trail.engine.begin() as conn:
        conn.execute(text("INSERT INTO audit_queue (entry, at, event, fields) VALUES "
                          "(:e, '2026-12-04T10:00:00.000+00:00', 'lookup.requested', '{')"),
                     {"e": uuid.uuid4().hex})
    page = signed_in(fed.app, "auditor").get("/audit/export", headers=HTML)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "1 queued audit entry could not be recorded" in html, html
    assert "flag=entry_rejected" in html
