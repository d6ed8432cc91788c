"""Reading the trail as the auditor's casework: lookups one row each, the
flagged ones with their review, and the figures the charts draw
(SQLAlchemy Core; the shaping is ``casework``, ``reviews`` and ``patterns``)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, Engine, Select, and_, exists, or_, select

from federator.audit.casework import ENDINGS, HEADS, LookupRow, join_lookups
from federator.audit.patterns import Activity
from federator.audit.queries import bound
from federator.audit.redaction import open_record
from federator.audit.reviews import Review, fold_reviews
from federator.audit.tables import audit_flags
from federator.names import AUDIT_REVIEW_EVENTS, LOOKUP_COMPLETED, LOOKUP_REQUESTED
from federator.storage import audit_records as r

KINDS = {kind: event for event, kind in HEADS.items()}
_ending = r.alias("ending")


@dataclass(frozen=True)
class LookupFilter:
    start: datetime | date | None = None
    end: datetime | date | None = None
    actor: str | None = None
    organisation: str | None = None
    basis: str | None = None
    kind: str | None = None  # lookup, refused, rate_limited
    flag: str | None = None
    flagged: bool | None = None


def _flag_on(flag: str | None) -> ColumnElement[bool]:
    """The head record, or its lookup's completion, carries ``flag`` (any flag)."""
    own = audit_flags.c.seq == r.c.seq
    late = select(audit_flags.c.seq).join(_ending, _ending.c.seq == audit_flags.c.seq).where(
        _ending.c.event == LOOKUP_COMPLETED, _ending.c.lookup_id == r.c.lookup_id)
    if flag:
        own = and_(own, audit_flags.c.flag == flag)
        late = late.where(audit_flags.c.flag == flag)
    return or_(exists().where(own), and_(r.c.lookup_id.is_not(None), late.exists()))


def _heads(columns: Sequence[Any], f: LookupFilter) -> Select[Any]:
    # Every kind is most records: walking the primary key newest first (the event
    # index hidden behind ``|| ''``) beats sorting every head found by the index.
    query = select(*columns).where(
        r.c.event == KINDS[f.kind] if f.kind else r.c.event.concat("").in_(tuple(HEADS)))
    if f.start is not None:
        query = query.where(r.c.at >= bound(f.start, upper=False))
    if f.end is not None:
        end = bound(f.end, upper=True)
        query = query.where(r.c.at <= end if isinstance(f.end, datetime) else r.c.at < end)
    for column, value in ((r.c.actor_id, f.actor), (r.c.actor_organisation, f.organisation),
                          (r.c.basis_type, f.basis)):
        if value:
            query = query.where(column == value)
    if f.flag:
        query = query.where(_flag_on(f.flag))
    if f.flagged is not None:
        query = query.where(_flag_on(None) if f.flagged else ~_flag_on(None))
    return query


def _opened(rows: Iterable[Any]) -> list[dict[str, Any]]:
    """Records as readers see them: sealed free text (record format 2) back in
    its place, a pruned record (no body) left out."""
    return [open_record(json.loads(row.body), row.texts) for row in rows if row.body]


def _rows(conn: Connection, heads: Sequence[dict[str, Any]]) -> list[LookupRow]:
    """Rows for these head records (in their order), their endings read in one query."""
    ids = [h["lookup_id"] for h in heads if h.get("event") == LOOKUP_REQUESTED
           and isinstance(h.get("lookup_id"), str)]
    endings: list[dict[str, Any]] = []
    for start in range(0, len(ids), 500):
        endings += _opened(conn.execute(
            select(r.c.body, r.c.texts).where(r.c.lookup_id.in_(ids[start:start + 500]),
                                              r.c.event.concat("").in_(ENDINGS))))
    return join_lookups(heads, endings)


def lookup_page(engine: Engine, f: LookupFilter, *, cursor: int | None = None,
                limit: int = 50) -> tuple[list[LookupRow], int | None]:
    """Newest first; the next page starts below the returned seq (None: no more)."""
    query = _heads([r.c.body, r.c.texts], f)
    if cursor is not None:
        query = query.where(r.c.seq < cursor)
    query = query.order_by(r.c.seq.desc()).limit(limit + 1)
    with engine.connect() as conn:
        heads = _opened(conn.execute(query))
        rows = _rows(conn, heads[:limit])
    return rows, (rows[-1].seq if len(heads) > limit and rows else None)


def rows_at(engine: Engine, seqs: Iterable[int]) -> dict[int, LookupRow]:
    """The rows whose first record is at these seqs (others are not rows)."""
    wanted = sorted(set(seqs))
    found: dict[int, LookupRow] = {}
    with engine.connect() as conn:
        for start in range(0, len(wanted), 500):
            heads = _opened(conn.execute(
                select(r.c.body, r.c.texts).where(r.c.seq.in_(wanted[start:start + 500]),
                                                  r.c.event.in_(tuple(HEADS)))))
            found.update((row.seq, row) for row in _rows(conn, heads))
    return found


def reviews(engine: Engine, *, case: int | None = None, after: int = 0
            ) -> dict[int, Review]:
    """Each case's review, folded from its ``audit.review.*`` records: every
    case's, or one ``case``'s; ``after``: only records after this seq (a review
    always comes after its case's first record)."""
    query = select(r.c.body).where(r.c.event.in_(AUDIT_REVIEW_EVENTS), r.c.seq > after)
    if case is not None:  # the canonical body has ``"case":N,`` (sorted keys, no spaces)
        query = query.where(r.c.body.contains(f'"case":{int(case)},', autoescape=True),
                            r.c.seq > case)
    with engine.connect() as conn:
        found = fold_reviews(json.loads(b) for b in conn.execute(query).scalars() if b)
    return found if case is None else {k: v for k, v in found.items() if k == case}


def reviewed_since(conn: Connection, case: int, seq: int) -> bool:
    """A review of ``case`` was written after record ``seq`` (read under the head)."""
    bodies = conn.execute(select(r.c.body).where(
        r.c.event.in_(AUDIT_REVIEW_EVENTS), r.c.seq > max(seq, case),
        r.c.body.contains(f'"case":{int(case)},', autoescape=True))).scalars()
    return any(json.loads(b).get("case") == case for b in bodies if b)


def flagged_cases(engine: Engine, f: LookupFilter) -> list[int]:
    """The case numbers (first records' seqs) of flagged lookups, newest first:
    read from the flags (a few per cent of the records), not every head."""
    plain = replace(f, flag=None, flagged=None)
    own = _heads([r.c.seq], plain).join(audit_flags, audit_flags.c.seq == r.c.seq)
    late = _heads([r.c.seq], plain).join(_ending, and_(
        _ending.c.lookup_id == r.c.lookup_id, _ending.c.event.concat("") == LOOKUP_COMPLETED)).join(
        audit_flags, audit_flags.c.seq == _ending.c.seq)
    if f.flag:
        own, late = own.where(audit_flags.c.flag == f.flag), late.where(
            audit_flags.c.flag == f.flag)
    with engine.connect() as conn:
        found = {seq for query in (own, late) for seq in conn.execute(query).scalars()}
    return sorted(found, reverse=True)


def activity(engine: Engine, start: date, end: date, *, actor: str | None = None
             ) -> list[Activity]:
    """Every head record from ``start`` to ``end`` (whole days, UTC), with the
    flags raised on it or its lookup's completion; no bodies read."""
    f = LookupFilter(start=start, end=end, actor=actor)
    query = _heads([r.c.seq, r.c.at, r.c.event, r.c.actor_organisation, r.c.actor_id], f)
    flags: dict[int, set[str]] = {}
    with engine.connect() as conn:
        heads = conn.execute(query.order_by(r.c.seq)).all()
        own = _heads([r.c.seq, audit_flags.c.flag], f).join(
            audit_flags, audit_flags.c.seq == r.c.seq)
        late = _heads([r.c.seq, audit_flags.c.flag], f).join(
            _ending, and_(_ending.c.lookup_id == r.c.lookup_id,
                          _ending.c.event.concat("") == LOOKUP_COMPLETED)).join(
            audit_flags, audit_flags.c.seq == _ending.c.seq)
        for query_ in (own, late):
            for seq, flag in conn.execute(query_):
                flags.setdefault(seq, set()).add(flag)
    return [Activity(seq=h.seq, at=datetime.fromisoformat(h.at), kind=HEADS[h.event],
                     organisation=h.actor_organisation or "", actor_id=h.actor_id or "",
                     flags=frozenset(flags.get(h.seq, ()))) for h in heads]
