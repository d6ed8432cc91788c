"""The casework's SQL (``federator.audit.case_queries``) on SQLite and
PostgreSQL: a flag on a lookup's completion counts as the lookup's, kinds and
flags filter, paging by row, one case's reviews read alone (case 1 is not case
11), and the stale-change check under the head."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from federator.audit import case_queries as cq
from federator.audit.trail import AuditTrail
from federator.storage import make_engine, upgrade

pytestmark = pytest.mark.integration

ACTOR = {"actor_id": "p1", "actor_role": "practitioner", "actor_organisation": "Leeds"}
BASIS = {"type": "consent", "given_by": "parent", "reference": "R"}


@pytest.fixture
def trail(database_url: str) -> Any:
    engine = make_engine(database_url)
    upgrade(engine)
    trail = AuditTrail(engine)
    moment = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)  # a Wednesday, in office hours
    trail.clock = lambda: moment
    yield trail
    engine.dispose()


def lookup(trail: AuditTrail, n: int, *, late_flag: bool = False, **extra: Any) -> int:
    asked = trail.append("lookup.requested", lookup_id=f"L{n}", **ACTOR, purpose="P",
                         basis_type="consent", basis=BASIS, child_pseudonym=f"c{n}",
                         authorities=["a"], **extra)
    trail.append("lookup.completed", lookup_id=f"L{n}", **ACTOR, child_pseudonym=f"c{n}",
                 complete=True, outcomes=[{"id": "a", "outcome": "no_match"}],
                 professionals=0, **({"flags": [{"flag": "repeat_lookups", "reason": "r"}]}
                                     if late_flag else {}))
    return int(asked["seq"])


def test_flags_on_completions_kinds_paging_and_activity(trail: AuditTrail) -> None:
    plain = lookup(trail, 1)
    late = lookup(trail, 2, late_flag=True)
    scoped = lookup(trail, 3, scope="all")  # flagged scope_all as it is written
    refused = trail.append("lookup.refused", **ACTOR, fields=["basis"])["seq"]
    limited = trail.append("lookup.rate_limited", **ACTOR, limit="10/minute")["seq"]
    engine = trail.engine

    def seqs(**f: Any) -> list[int]:
        rows, _ = cq.lookup_page(engine, cq.LookupFilter(**f), limit=50)
        return [r.seq for r in rows]

    assert seqs() == [limited, refused, scoped, late, plain]
    assert seqs(flagged=True) == [scoped, late]
    assert seqs(flagged=False) == [limited, refused, plain]
    assert seqs(flag="repeat_lookups") == [late]
    assert seqs(kind="refused") == [refused] and seqs(kind="rate_limited") == [limited]
    assert cq.flagged_cases(engine, cq.LookupFilter()) == [scoped, late]
    first, after = cq.lookup_page(engine, cq.LookupFilter(), limit=2)
    assert [r.seq for r in first] == [limited, refused] and after == refused
    rest, end = cq.lookup_page(engine, cq.LookupFilter(), cursor=after, limit=10)
    assert [r.seq for r in rest] == [scoped, late, plain] and end is None
    assert rest[1].records == [late, late + 1] and rest[1].flag_names == ["repeat_lookups"]
    today = date(2026, 12, 2)
    activity = {a.seq: a for a in cq.activity(engine, today, today)}
    assert set(activity) == {plain, late, scoped, refused, limited}
    assert activity[late].flags == {"repeat_lookups"} and activity[scoped].flags == {
        "scope_all"} and activity[plain].flags == frozenset()
    assert cq.activity(engine, today + timedelta(days=1), today + timedelta(days=2)) == []
    assert [a.seq for a in cq.activity(engine, today, today, actor="nobody")] == []


def test_one_cases_reviews_and_the_stale_check(trail: AuditTrail) -> None:
    cases = [lookup(trail, n) for n in range(12)]
    one, eleven = cases[0], cases[5]
    assert (one, eleven) == (1, 11)  # a body with "case":11, must not be case 1's
    first = trail.append("audit.review.referred", **ACTOR, case=eleven, state="referred",
                         outcome="x", based_on=0)["seq"]
    trail.append("audit.review.no_concern", **ACTOR, case=one, state="no_concern",
                 outcome="fine", based_on=0)
    engine = trail.engine
    assert set(cq.reviews(engine)) == {one, eleven}
    only = cq.reviews(engine, case=one)
    assert set(only) == {one} and only[one].state == "no_concern"
    assert cq.reviews(engine, case=eleven)[eleven].last_seq == first
    with engine.connect() as conn:
        assert cq.reviewed_since(conn, eleven, 0)
        assert not cq.reviewed_since(conn, eleven, first)
        assert not cq.reviewed_since(conn, cases[6], 0)
    written = trail.append_unless(lambda conn: cq.reviewed_since(conn, eleven, 0),
                                  "audit.review.no_concern", **ACTOR, case=eleven,
                                  state="no_concern", outcome="late", based_on=0)
    assert written is None
    assert cq.reviews(engine, case=eleven)[eleven].state == "referred"
