"""Appending to and reading the trail in the database."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError

from federator.audit.chain import GENESIS, Verdict, canonical, record_hash, verify_chain
from federator.storage import audit_records

log = logging.getLogger(__name__)

INDEXED = ("lookup_id", "actor_id", "actor_role", "actor_organisation", "purpose",
           "basis_type", "child_pseudonym")


class AuditUnavailable(RuntimeError):
    """The trail could not be written: the action it records must not go ahead."""


class AuditTrail:
    def __init__(self, engine: Engine, *, attempts: int = 20) -> None:
        self.engine = engine
        self.attempts = attempts

    def append(self, event: str, **fields: Any) -> dict[str, Any]:
        """Write one record after the current head; retried when another process wins."""
        last_error: Exception | None = None
        for attempt in range(self.attempts):
            try:
                return self._append_once(event, fields)
            except (IntegrityError, OperationalError) as e:
                last_error = e
                time.sleep(min(0.005 * (2**attempt), 0.2))
            except SQLAlchemyError as e:
                raise AuditUnavailable("audit trail unavailable") from e
        raise AuditUnavailable("audit trail unavailable") from last_error

    def _append_once(self, event: str, fields: Mapping[str, Any]) -> dict[str, Any]:
        with self.engine.begin() as conn:
            head = conn.execute(
                select(audit_records.c.seq, audit_records.c.hash)
                .order_by(audit_records.c.seq.desc()).limit(1)
            ).first()
            seq, prev = (head.seq + 1, head.hash) if head else (1, GENESIS)
            record = {"seq": seq, "at": datetime.now(UTC).isoformat(timespec="milliseconds"),
                      "event": event, **fields}
            body = canonical(record)
            digest = record_hash(prev, body)
            row = {k: record.get(k) for k in INDEXED}
            conn.execute(audit_records.insert().values(
                seq=seq, at=record["at"], event=event, body=body, prev_hash=prev,
                hash=digest, **row,
            ))
        return {**record, "prev_hash": prev, "hash": digest}

    def records(self, *, event: str | None = None, lookup_id: str | None = None,
                limit: int = 100) -> list[dict[str, Any]]:
        query = select(audit_records).order_by(audit_records.c.seq)
        if event:
            query = query.where(audit_records.c.event == event)
        if lookup_id:
            query = query.where(audit_records.c.lookup_id == lookup_id)
        with self.engine.connect() as conn:
            rows = conn.execute(query.limit(limit)).mappings().all()
        return [{**json.loads(r["body"]), "prev_hash": r["prev_hash"], "hash": r["hash"]}
                for r in rows]

    def verify(self, *, start: int = 1, end: int | None = None, batch: int = 1000) -> Verdict:
        """Walk the chain from ``start`` (default: the first record)."""
        prev = GENESIS
        with self.engine.connect() as conn:
            if start > 1:
                before = conn.execute(
                    select(audit_records.c.hash).where(audit_records.c.seq == start - 1)
                ).scalar()
                if before is None:
                    return Verdict(False, 0, start - 1, f"record {start - 1} is missing")
                prev = before

            def rows():  # type: ignore[no-untyped-def]
                cursor = start
                while end is None or cursor <= end:
                    query = (select(audit_records).where(audit_records.c.seq >= cursor)
                             .order_by(audit_records.c.seq).limit(batch))
                    if end is not None:
                        query = query.where(audit_records.c.seq <= end)
                    chunk = conn.execute(query).mappings().all()
                    if not chunk:
                        return
                    yield from chunk
                    cursor = chunk[-1]["seq"] + 1

            return verify_chain(rows(), start_prev=prev, start_seq=start)
