"""The trail's appending (``AuditTrail`` inherits it): on PostgreSQL through the
queue (``federator.audit.batching``), elsewhere, and for ``append_unless``, one
record at a time under the head lock; then, for every record written or
integrated, its checkpoint when one is due, and its alerts."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, select, text
from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError

from federator import metrics
from federator.audit import batching, queue_checks, queue_writer
from federator.audit.appending import RELAXED, Sealed, multiples, sealed
from federator.audit.cadence import Cadence
from federator.audit.chain import GENESIS
from federator.audit.flags import FlagLimits, alert_flags
from federator.audit.queue_writer import QueueWriter
from federator.audit.sequencer import Sequencer
from federator.storage import audit_records

log = logging.getLogger("federator.audit.trail")

_HEAD = (select(audit_records.c.seq, audit_records.c.hash)
         .order_by(audit_records.c.seq.desc()).limit(1))


class AuditUnavailable(RuntimeError):
    """The trail could not be written: the action it records must not go ahead."""


class Appender:
    engine: Engine
    attempts: int
    flag_limits: FlagLimits
    checkpoint_every: int
    keys: Any
    cadence: Cadence
    clock: Callable[[], datetime]
    listeners: list[Callable[[dict[str, Any]], None]]
    sequencer: Sequencer
    queue_writer: QueueWriter

    def checkpoint(self, upto: int | None = None) -> Any:  # AuditTrail's
        raise NotImplementedError

    def append(self, event: str, **fields: Any) -> dict[str, Any]:
        """Write one record after the current head; retried when another process
        wins. On PostgreSQL through the queue (``federator.audit.batching``)."""
        if self.engine.dialect.name == "postgresql":
            return self._append_queued(event, fields)
        record = self._append(event, fields, None)
        assert record is not None
        return record

    def enqueue(self, event: str, **fields: Any) -> None:
        """Commit the record's entry to the queue and return, for the lookup's own
        path, which never reads its records back: the commit is the durability
        point (flushed to disk, unless ``RELAXED``), and the entry becomes a record
        (numbered, flagged, sealed, chained, exactly as ``append`` makes it) within
        moments, by this process's sequencer or whichever integrator comes first
        (``federator.audit.sequencer``). Elsewhere than PostgreSQL, ``append``.
        Raises ``AuditUnavailable``."""
        if self.engine.dialect.name != "postgresql":
            self.append(event, **fields)
            return
        began = time.perf_counter()
        self._commit_entry(event, fields)
        self.sequencer.wake()
        metrics.audit_append(event, time.perf_counter() - began)

    def append_unless(self, written: Callable[[Connection], bool], event: str,
                      **fields: Any) -> dict[str, Any] | None:
        """Write the record unless ``written(conn)`` says it (or what makes it moot)
        is already there: checked while holding the head, so of several processes
        appending the same record at once exactly one writes it. None when not written."""
        return self._append(event, fields, written)

    def integrate_pending(self) -> int:
        """Integrate every entry queued by now (PostgreSQL), waiting for the head
        if another process holds it: the sequencer's pass, and what reads the
        trail does first, so that what was enqueued reads back as a record;
        entries left by writers that died after queueing them too. How many.

        The commit need not wait for the disk: the queue rows it deletes are on
        disk, and come back if it is lost (WAL is replayed in order, so a later
        flushed commit, a checkpoint's, carries it to disk first)."""
        if self.engine.dialect.name != "postgresql":
            return 0
        pool = self.engine.pool
        try:
            with self.engine.connect() as conn:
                # one round trip: nothing queued, nothing locked
                if conn.execute(batching.LOCK_IF_QUEUED).first() is None:
                    conn.rollback()
                    return 0
                done = batching.integrate(conn, self)
                conn.commit()
        finally:
            if self.engine.pool is not pool:  # disposed meanwhile (its owner is done):
                pool.dispose()  # close the connection this pass gave back to the old pool
        self._after(done)
        return len(done)

    def _retrying(self, attempt_once: Callable[[], Any]) -> Any:
        last_error: Exception | None = None
        for attempt in range(self.attempts):
            try:
                return attempt_once()
            except (IntegrityError, OperationalError) as e:
                last_error = e
                time.sleep(random.uniform(0.5, 1.0) * min(0.002 * (2**attempt), 0.1))  # noqa: S311
            except SQLAlchemyError as e:
                raise AuditUnavailable("audit trail unavailable") from e
        raise AuditUnavailable("audit trail unavailable") from last_error

    def _commit_entry(self, event: str, fields: Mapping[str, Any]) -> str:
        """Commit an entry to the queue (``queue_writer``: one round trip, flushed
        unless ``RELAXED``), retried; its id. An entry the integrator would set aside
        (``queue_checks``: a NUL, a filter column too long, …) is refused alone,
        never queued."""
        encoded = queue_writer.encode(fields)
        if (reason := queue_checks.problem(event, fields, encoded)) is not None:
            raise AuditUnavailable(f"audit trail unavailable: {reason}")
        entry = batching.new_entry()
        at = self.clock().astimezone(UTC).isoformat(timespec="milliseconds")

        def once() -> None:
            try:
                self.queue_writer.write(entry, at, event, encoded, relaxed=event in RELAXED)
            except IntegrityError:  # an earlier attempt's commit went through
                with self.engine.connect() as conn:
                    if not batching.queued_or_done(conn, entry):
                        raise

        self._retrying(once)
        return entry

    def _append_queued(self, event: str, fields: Mapping[str, Any]) -> dict[str, Any]:
        began = time.perf_counter()
        entry = self._commit_entry(event, fields)

        def once() -> tuple[dict[str, Any] | None, list[Sealed]]:
            with self.engine.connect() as conn:
                conn.execution_options(isolation_level="AUTOCOMMIT")  # a statement each
                return batching.take_head(conn, entry, self)

        record, done = self._retrying(once)
        self._after(done)
        if record is None:  # the entry left the queue without becoming a record
            raise AuditUnavailable("audit trail unavailable")
        if record.get("event") != event:  # rejected (queue_checks): recorded as such
            raise AuditUnavailable("audit trail unavailable: the entry was rejected")
        metrics.audit_append(event, time.perf_counter() - began)
        return record

    def _append(self, event: str, fields: Mapping[str, Any],
                written: Callable[[Connection], bool] | None) -> dict[str, Any] | None:
        began = time.perf_counter()
        record, done = self._retrying(lambda: self._append_once(event, fields, written))
        if record is not None:
            metrics.audit_append(event, time.perf_counter() - began)
            done.append(record)
        self._after(done)
        return None if record is None else record.record

    def _after(self, done: Sequence[Sealed]) -> None:
        """After the commit of records this process wrote or integrated: the
        checkpoints due at them, the time-based checkpoint's timer, each flag's alert."""
        if not done:
            return
        first, last = done[0].row["seq"], done[-1].row["seq"]
        for due in multiples(first, last, self.checkpoint_every):
            try:
                # at this record: other writers may have appended since
                self.checkpoint(upto=due)
            except SQLAlchemyError:  # the record stands; the next checkpoint covers it
                log.warning("audit checkpoint at %s not written", due)
        if self.keys is not None:
            self.cadence.added()
        for one in done:
            record = one.record
            for flag in alert_flags(record):
                metrics.audit_alert(flag)
                log.warning("audit alert: %s at record %s", flag, record["seq"])
            if record.get("flags"):
                for listener in self.listeners:
                    try:
                        listener(record)
                    except Exception:  # the record stands: what it reports is not undone
                        log.exception("a listener failed on audit record %s", record["seq"])

    def _append_once(self, event: str, fields: Mapping[str, Any],
                     written: Callable[[Connection], bool] | None = None
                     ) -> tuple[Sealed | None, list[Sealed]]:
        relaxed = event in RELAXED
        pending: list[Sealed] = []
        with self.engine.connect() as conn:
            if relaxed and conn.dialect.name == "sqlite":
                # Outside the transaction: SQLite refuses to change it inside one.
                conn.exec_driver_sql("PRAGMA synchronous=NORMAL")
            try:
                _take_the_head(conn)
                if conn.dialect.name == "postgresql":  # queued entries come first
                    pending = batching.integrate(conn, self)
                if written is not None and written(conn):
                    if pending:
                        conn.commit()
                    else:
                        conn.rollback()
                    return None, pending
                if relaxed and conn.dialect.name == "postgresql":
                    conn.execute(text("SET LOCAL synchronous_commit TO OFF"))
                record = self._write(conn, event, fields)
                conn.commit()
            finally:
                if relaxed and conn.dialect.name == "sqlite":
                    conn.rollback()  # a no-op after the commit; ends a failed one
                    conn.exec_driver_sql("PRAGMA synchronous=FULL")
                    conn.commit()
        return record, pending

    def _write(self, conn: Connection, event: str, fields: Mapping[str, Any]) -> Sealed:
        head = conn.execute(_HEAD).first()
        seq, prev = (head.seq + 1, head.hash) if head else (1, GENESIS)
        record = {"seq": seq, "at": self.clock().isoformat(timespec="milliseconds"),
                  "event": event, **fields}
        batching.flag(conn, record, self.flag_limits)
        one = sealed(record, prev)  # free text by its salted hash: redactable (format 2)
        batching.write(conn, [one])
        return one

def _take_the_head(conn: Connection) -> None:
    """Queue writers instead of letting them race for the same seq: PostgreSQL
    takes a transaction advisory lock, SQLite its write lock (BEGIN IMMEDIATE,
    waiting up to the busy timeout). The primary key and the unique hashes stay
    the guarantee; this only spares the retries."""
    dialect = conn.dialect.name
    if dialect == "postgresql":
        batching.lock_head(conn)
    elif dialect == "sqlite":
        conn.exec_driver_sql("BEGIN IMMEDIATE")
