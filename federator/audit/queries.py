"""Reading the trail for auditors and authority administrators (SQLAlchemy Core)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, Select, exists, select

from federator.audit.pseudonym import child_pseudonym
from federator.audit.redaction import open_record
from federator.audit.tables import audit_authorities, audit_flags
from federator.audit.tables import audit_child_refs as refs
from federator.names import AUDIT_REDACTED, LOOKUP_COMPLETED, LOOKUP_EVENTS
from federator.storage import audit_records as r


@dataclass(frozen=True)
class RecordFilter:
    start: datetime | date | None = None
    end: datetime | date | None = None
    actor: str | None = None
    organisation: str | None = None
    authority: str | None = None
    basis: str | None = None
    event: str | None = None
    flagged: bool | None = None
    flag: str | None = None
    pseudonyms: tuple[str, ...] = ()
    seq_from: int | None = None
    seq_to: int | None = None


@dataclass(frozen=True)
class Page:
    records: list[dict[str, Any]]
    next_cursor: str | None


def bound(value: datetime | date, *, upper: bool) -> str:
    """An ``at`` text to compare with: a date means the whole of that day (UTC)."""
    if not isinstance(value, datetime):
        start = datetime(value.year, value.month, value.day, tzinfo=UTC)
        value = start + timedelta(days=1) if upper else start
        return value.isoformat(timespec="milliseconds")
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat(timespec="milliseconds")


def _filtered(query: Select[Any], f: RecordFilter) -> Select[Any]:
    if f.start is not None:
        query = query.where(r.c.at >= bound(f.start, upper=False))
    if f.end is not None:
        end = bound(f.end, upper=True)
        query = query.where(r.c.at < end if not isinstance(f.end, datetime) else r.c.at <= end)
    if f.actor:
        query = query.where(r.c.actor_id == f.actor)
    if f.organisation:
        query = query.where(r.c.actor_organisation == f.organisation)
    if f.basis:
        query = query.where(r.c.basis_type == f.basis)
    if f.event:
        query = query.where(r.c.event.like(f.event[:-1] + "%") if f.event.endswith("*")
                            else r.c.event == f.event)
    if f.authority:
        query = query.where(exists().where(audit_authorities.c.seq == r.c.seq,
                                           audit_authorities.c.authority_id == f.authority))
    if f.flag:
        query = query.where(exists().where(audit_flags.c.seq == r.c.seq,
                                           audit_flags.c.flag == f.flag))
    if f.flagged is not None:
        flagged = exists().where(audit_flags.c.seq == r.c.seq)
        query = query.where(flagged if f.flagged else ~flagged)
    if f.pseudonyms:
        query = query.where(r.c.child_pseudonym.in_(f.pseudonyms))
    if f.seq_from is not None:
        query = query.where(r.c.seq >= f.seq_from)
    if f.seq_to is not None:
        query = query.where(r.c.seq <= f.seq_to)
    return query


#: What a reader selects of a record: its body, the free text beside it, its hashes.
READ = (r.c.seq, r.c.at, r.c.event, r.c.body, r.c.texts, r.c.leaf, r.c.prev_hash, r.c.hash)


def decode(row: Mapping[str, Any]) -> dict[str, Any]:
    """A reader's view of a record: its sealed free text opened (``redaction``);
    a pruned record's (body gone) says only when, what kind, and that it is pruned."""
    if row["body"] == "":
        return {"seq": row["seq"], "at": row["at"], "event": row["event"], "pruned": True,
                "leaf": row["leaf"], "prev_hash": row["prev_hash"], "hash": row["hash"]}
    return {**open_record(json.loads(row["body"]), row["texts"]),
            "prev_hash": row["prev_hash"], "hash": row["hash"]}


def with_redactions(conn: Connection, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each redacted record gets ``redactions``: field, when, by whom and why, from
    the ``audit.redacted`` records its markers name."""
    wanted = {int(s) for rec in records for s in (rec.get("redacted") or {}).values()
              if isinstance(s, int)}
    if not wanted:
        return records
    found = {row.seq: json.loads(row.body) for row in conn.execute(
        select(r.c.seq, r.c.body).where(r.c.seq.in_(wanted), r.c.event == AUDIT_REDACTED))
        if row.body}
    for rec in records:
        marks = rec.get("redacted") or {}
        rec["redactions"] = [
            {"field": field, "seq": by, "at": found.get(by, {}).get("at"),
             "by": found.get(by, {}).get("actor_id"),
             "role": found.get(by, {}).get("actor_role"),
             "reason": found.get(by, {}).get("reason")}
            for field, by in marks.items()]
    return records


def list_records(engine: Engine, f: RecordFilter, *, cursor: str | None = None,
                 limit: int = 50, newest_first: bool = True) -> Page:
    """Keyset paging on ``seq``: ``next_cursor`` is the last seq of this page."""
    query = _filtered(select(*READ), f)
    if cursor is not None:
        after = int(cursor)
        query = query.where(r.c.seq < after if newest_first else r.c.seq > after)
    query = query.order_by(r.c.seq.desc() if newest_first else r.c.seq).limit(limit + 1)
    with engine.connect() as conn:
        rows = conn.execute(query).mappings().all()
        records = with_redactions(conn, [decode(row) for row in rows[:limit]])
    more = len(rows) > limit
    return Page(records, str(records[-1]["seq"]) if more and records else None)


def iter_records(engine: Engine, f: RecordFilter, batch: int = 2000
                 ) -> Iterator[dict[str, Any]]:
    """Every matching record, oldest first, without holding them all."""
    cursor: str | None = None
    while True:
        page = list_records(engine, f, cursor=cursor, limit=batch, newest_first=False)
        yield from page.records
        if page.next_cursor is None:
            return
        cursor = page.next_cursor


def get_record(engine: Engine, seq: int) -> dict[str, Any] | None:
    with engine.connect() as conn:
        row = conn.execute(select(*READ).where(r.c.seq == seq)).mappings().first()
        return with_redactions(conn, [decode(row)])[0] if row else None


def child_pseudonyms(child: Mapping[str, Any], audit_key: str) -> tuple[list[str], list[str]]:
    """The pseudonyms a lookup of this child could have been recorded under:
    (which identities were searched, their pseudonyms)."""
    searched, values = [], []
    if child.get("nhs_number"):
        searched.append("nhs_number")
        values.append(child_pseudonym({"nhs_number": child["nhs_number"]}, audit_key))
    if child.get("given_name") and child.get("family_name") and child.get("date_of_birth"):
        searched.append("name_dob")
        values.append(child_pseudonym({k: child[k] for k in
                                       ("given_name", "family_name", "date_of_birth")},
                                      audit_key))
    return searched, values


def matched_pseudonyms(conn: Connection, pseudonyms: Sequence[str], *, rounds: int = 3
                       ) -> tuple[str, ...]:
    """The pseudonyms given, and those of every lookup an authority matched to the
    same record as a lookup under them (``record_ref``): the trail follows the
    matched child, not the typed details. A few rounds, each one query."""
    found = set(pseudonyms)
    for _ in range(rounds):
        ours = select(refs.c.authority_id, refs.c.record_ref).join(
            r, r.c.seq == refs.c.seq).where(r.c.child_pseudonym.in_(found)).subquery()
        same = select(r.c.child_pseudonym).distinct().join(refs, refs.c.seq == r.c.seq).join(
            ours, (ours.c.authority_id == refs.c.authority_id)
            & (ours.c.record_ref == refs.c.record_ref))
        more = {p for (p,) in conn.execute(same) if p} - found
        if not more:
            break
        found |= more
    return tuple(sorted(found))


def lookups_of_child(engine: Engine, pseudonyms: Sequence[str], limit: int = 1000
                     ) -> list[dict[str, Any]]:
    """Every lookup record of the child: under the pseudonyms given, or of a lookup
    an authority matched to the same record (``matched_pseudonyms``)."""
    if not pseudonyms:
        return []
    with engine.connect() as conn:
        pseudonyms = matched_pseudonyms(conn, pseudonyms)
    f = RecordFilter(pseudonyms=tuple(pseudonyms))
    query = _filtered(select(*READ), f).where(
        r.c.event.in_(LOOKUP_EVENTS)).order_by(r.c.seq).limit(limit)
    with engine.connect() as conn:
        return [decode(row) for row in conn.execute(query).mappings().all()]


def for_authority(record: Mapping[str, Any], authority: str) -> dict[str, Any]:
    """What an authority administrator may see of a lookup that reached them:
    who asked, when, why, on what basis, and their own authority's outcome."""
    view = {k: record.get(k) for k in ("seq", "at", "event", "lookup_id", "actor_role",
                                       "actor_organisation", "purpose", "basis_type")}
    if record.get("event") == LOOKUP_COMPLETED:
        mine = [o for o in record.get("outcomes") or [] if o.get("id") == authority]
        view["outcome"] = mine[0].get("outcome") if mine else None
    return view


def authority_lookups(engine: Engine, authority: str, f: RecordFilter, *,
                      cursor: str | None, limit: int) -> Page:
    scoped = RecordFilter(start=f.start, end=f.end, authority=authority,
                          event=f.event if f.event in LOOKUP_EVENTS else "lookup.*")
    page = list_records(engine, scoped, cursor=cursor, limit=limit)
    return Page([for_authority(rec, authority) for rec in page.records], page.next_cursor)
