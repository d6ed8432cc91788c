"""The flag queries run on every lookup (``federator.audit.history``): their cost must
not grow with the practitioner's history. Each statement ``load_history`` runs is
measured against a practitioner with a short history and again with a long one, by
the SQLite virtual machine's instructions (its progress handler): a count, not a
time, so the machine's load cannot change it.

SQLite: its planner has no statistics, so its choice of index is fixed by the
schema, and a missing index shows. PostgreSQL's choice follows the table's
statistics (a practitioner who made most of the trail's lookups is scanned by
time instead), so rows read there measure the data as much as the schema; the
one PostgreSQL test here is of the integrator's bulk read (the blocks it touches),
with the trail's statistics fresh."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, event
from support.insider import insider
from support.services import postgres_schema

from federator.audit.bulk_history import stored_histories
from federator.audit.flags import FlagLimits
from federator.audit.history import load_history, matched_history, stamp
from federator.audit.tables import audit_child_refs
from federator.storage import audit_records, make_engine, upgrade

pytestmark = pytest.mark.integration

LIMITS = FlagLimits(sustained_hours=0)  # the sustained-volume query: its own test below


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path / 'trail.sqlite'}")
    upgrade(engine)
    yield engine
    engine.dispose()


def history(engine: Engine, busy_lookups: int) -> None:
    """A trail of the last day: ``busy`` made ``busy_lookups`` lookups (requested
    and completed, each about another child), 30 colleagues 200 each, and one
    colleague 300 in the last ten minutes, since ``busy``'s last. Seq follows time."""
    now = datetime.now(UTC)
    day, recent = timedelta(hours=23), timedelta(minutes=10)
    lookups = [(now - day + (day - recent) * i / busy_lookups, "busy")
               for i in range(busy_lookups)]
    lookups += [(now - day + (day - recent) * i / 200, f"colleague-{c}")
                for c in range(30) for i in range(200)]
    lookups += [(now - recent + recent * i / 400, "colleague-recent") for i in range(300)]
    rows = []
    for at, actor in sorted(lookups):
        for name in ("lookup.requested", "lookup.completed"):
            seq = len(rows) + 1
            body = {"event": name, "actor_id": actor,
                    "outcomes": [{"id": "leeds-cs", "outcome": "no_match"}]}
            rows.append({"seq": seq, "at": stamp(at), "event": name, "lookup_id": f"l{seq}",
                         "actor_id": actor, "actor_organisation": "Leeds",
                         "child_pseudonym": f"{seq:064x}", "body": json.dumps(body),
                         "prev_hash": f"p{seq:063x}", "hash": f"h{seq:063x}"})
    with insider(engine) as conn:
        conn.execute(audit_records.delete())
        conn.execute(audit_child_refs.delete())
        conn.execute(audit_records.insert(), rows)
        # every completion matched its own child at one authority
        conn.execute(audit_child_refs.insert(), [
            {"seq": row["seq"], "authority_id": "leeds-cs", "record_ref": f"ref-{row['seq']}"}
            for row in rows if row["event"] == "lookup.completed"])


def statements(conn: Connection, record: dict[str, Any],
               run: Any = lambda conn, record: load_history(conn, record, LIMITS)
               ) -> list[tuple[str, Any]]:
    """Every statement ``run`` (``load_history``) sends for ``record``, with its
    parameters."""
    seen: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, statement: str, parameters: Any, *args: Any) -> None:
        seen.append((statement, parameters))

    event.listen(conn, "before_cursor_execute", capture)
    try:
        run(conn, record)
    finally:
        event.remove(conn, "before_cursor_execute", capture)
    return seen


def cost(conn: Connection, statement: str, parameters: Any) -> int:
    """Instructions (in tens) the SQLite virtual machine ran for the statement."""
    raw = conn.connection.driver_connection
    steps = [0]

    def tick() -> int:
        steps[0] += 1
        return 0

    raw.set_progress_handler(tick, 10)
    try:
        raw.execute(statement, parameters).fetchall()
    finally:
        raw.set_progress_handler(None, 0)
    return steps[0]


def costs(engine: Engine, limits: FlagLimits = LIMITS) -> list[int]:
    record = {"at": stamp(datetime.now(UTC)), "actor_id": "busy",
              "child_pseudonym": f"{7:064x}"}
    with engine.connect() as conn:
        return [cost(conn, s, p) for s, p in statements(
            conn, record, lambda conn, record: load_history(conn, record, limits))]


def test_flag_queries_cost_the_same_for_a_long_history(engine: Engine):
    history(engine, 100)
    short = costs(engine)
    history(engine, 2000)
    long = costs(engine)
    assert len(short) == len(long) == 4  # volume, no-match streak, organisations, repeats
    for i, (before, after) in enumerate(zip(short, long, strict=True)):
        # 20 times the history; a query that walks it costs 5 to 20 times as much
        assert after <= 2 * before + 50, f"statement {i}: {before} -> {after}"


def completion_costs(engine: Engine) -> list[int]:
    """The completion's repeat queries (``matched_history``) for a child looked up
    once before (the completion at seq 4 matched it)."""
    record = {"at": stamp(datetime.now(UTC)), "actor_id": "busy",
              "child_pseudonym": f"{7:064x}"}
    pairs = [("leeds-cs", "ref-4")]
    with engine.connect() as conn:
        return [cost(conn, s, p) for s, p in statements(
            conn, record, lambda c, rec: matched_history(c, rec, pairs, LIMITS))]


def test_the_completions_repeat_query_costs_the_same_for_a_long_history(engine: Engine):
    history(engine, 100)
    short = completion_costs(engine)
    history(engine, 2000)
    long = completion_costs(engine)
    # typed the same way; the matched child's records; this actor's among them
    assert len(short) == len(long) == 3
    for i, (before, after) in enumerate(zip(short, long, strict=True)):
        assert after <= 2 * before + 50, f"statement {i}: {before} -> {after}"


def test_the_sustained_volume_query_reads_at_most_its_cap(engine: Engine):
    """Asked only of someone busy in the last hour, and then it reads at most
    hours x per-hour x 10 rows: four times the history costs about the same."""
    limits = FlagLimits(sustained_hours=3, sustained_per_hour=8)
    history(engine, 100)  # about 4 an hour: not asked at all
    assert len(costs(engine, limits)) == 4
    history(engine, 1000)
    some = costs(engine, limits)
    history(engine, 4000)
    more = costs(engine, limits)
    assert len(some) == len(more) == 5
    for i, (before, after) in enumerate(zip(some, more, strict=True)):
        assert after <= 2 * before + 50, f"statement {i}: {before} -> {after}"


@pytest.fixture
def pg_engine() -> Iterator[Engine]:
    with postgres_schema() as url:
        engine = make_engine(url)
        upgrade(engine)
        yield engine
        engine.dispose()


def bulk_blocks(engine: Engine) -> int:
    """The buffers PostgreSQL touches running the integrator's bulk history
    (``bulk_history.stored_histories``) for four new lookups by ``busy``, each
    of another child (EXPLAIN ANALYZE: blocks, not time)."""
    now = datetime.now(UTC)
    records = [{"at": stamp(now), "actor_id": "busy", "child_pseudonym": f"{7 + i:064x}"}
               for i in range(4)]
    with engine.connect() as conn:
        conn.exec_driver_sql("ANALYZE audit_records")
        sent = statements(conn, {}, lambda c, _: stored_histories(c, records, LIMITS))
        assert len(sent) == 1  # one statement for the batch
        statement, parameters = sent[0]
        plan = conn.exec_driver_sql("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + statement,
                                    parameters).scalar_one()
    top = (plan if isinstance(plan, list) else json.loads(plan))[0]["Plan"]
    return int(top["Shared Hit Blocks"]) + int(top["Shared Read Blocks"])


def test_the_integrators_bulk_history_costs_the_same_for_a_long_day(pg_engine: Engine):
    """PostgreSQL, where the integrator runs: a practitioner's repeats of a child
    are read through the child's index, not by walking the practitioner's day
    (it was 600 rows filtered for each new lookup of someone with 600 that day)."""
    history(pg_engine, 100)
    short = bulk_blocks(pg_engine)
    history(pg_engine, 2000)
    long = bulk_blocks(pg_engine)
    assert long <= 2 * short + 50, f"{short} -> {long} blocks"
