"""Appending to and reading the trail in the database."""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, event, select, text
from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError

from federator import metrics
from federator.audit import batching
from federator.audit.appending import RELAXED, Sealed, multiples, sealed
from federator.audit.batching import HEAD_LOCK
from federator.audit.cadence import Cadence, due_in
from federator.audit.chain import GENESIS, MIRRORED, Verdict
from federator.audit.checkpoints import Checkpoint, sign_checkpoint
from federator.audit.flags import FlagLimits, alert_flags
from federator.audit.merkle import frontier_extend, frontier_root, leaf_hash
from federator.audit.redaction import open_record
from federator.audit.tables import audit_checkpoints, audit_queue
from federator.audit.verification import StoredCheckpoint, verify_trail
from federator.storage import audit_records

__all__ = ["HEAD_LOCK", "RELAXED", "AuditTrail", "AuditUnavailable"]

log = logging.getLogger(__name__)



_HEAD = (select(audit_records.c.seq, audit_records.c.hash)
         .order_by(audit_records.c.seq.desc()).limit(1))


class AuditUnavailable(RuntimeError):
    """The trail could not be written: the action it records must not go ahead."""


class AuditTrail:
    def __init__(self, engine: Engine, *, attempts: int = 30,
                 flag_limits: FlagLimits | None = None, checkpoint_every: int = 1000,
                 checkpoint_interval_s: float = 0, log_id: str = "federator") -> None:
        self.engine = engine
        self.attempts = attempts
        self.flag_limits = flag_limits or FlagLimits()
        self.checkpoint_every = checkpoint_every
        self.log_id = log_id
        self.keys: Any = None  # federator.signing.BrokerKeys, once loaded
        #: Checkpoints on time too (``FEDERATOR_AUDIT_CHECKPOINT_INTERVAL_S``; 0: off)
        self.cadence = Cadence(checkpoint_interval_s, self.checkpoint_if_due)
        if checkpoint_interval_s:  # the engine's owner is done with it: no more timers
            event.listen(engine, "engine_disposed", lambda _engine: self.cadence.close())
        #: the ``at`` of each record written (tests set it to write an old record)
        self.clock: Callable[[], datetime] = lambda: datetime.now(UTC)
        #: called with each flagged record once committed (``listen``)
        self.listeners: list[Callable[[dict[str, Any]], None]] = []

    def listen(self, listener: Callable[[dict[str, Any]], None]) -> None:
        """``listener(record)`` after each flagged record is committed, in the
        writer's thread: it must return at once (``federator.audit.alert_senders``)."""
        self.listeners.append(listener)

    def sign_with(self, keys: Any) -> None:
        """Checkpoints are signed with the broker's key (``key`` with a ``kid``)."""
        self.keys = keys

    # -- appending ------------------------------------------------------------------

    def append(self, event: str, **fields: Any) -> dict[str, Any]:
        """Write one record after the current head; retried when another process
        wins. On PostgreSQL through the queue (``federator.audit.batching``)."""
        if self.engine.dialect.name == "postgresql":
            return self._append_queued(event, fields)
        record = self._append(event, fields, None)
        assert record is not None
        return record

    def append_unless(self, written: Callable[[Connection], bool], event: str,
                      **fields: Any) -> dict[str, Any] | None:
        """Write the record unless ``written(conn)`` says it (or what makes it moot)
        is already there: checked while holding the head, so of several processes
        appending the same record at once exactly one writes it. None when not written."""
        return self._append(event, fields, written)

    def integrate_pending(self) -> int:
        """Integrate entries left in the queue by writers that died after queueing
        them (PostgreSQL; at start-up and before a time-based checkpoint): how many."""
        if self.engine.dialect.name != "postgresql":
            return 0
        with self.engine.connect() as conn:
            if conn.execute(select(audit_queue.c.id).limit(1)).first() is None:
                conn.rollback()
                return 0
            batching.lock_head(conn)
            done = batching.integrate(conn, self)
            conn.commit()
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

    def _append_queued(self, event: str, fields: Mapping[str, Any]) -> dict[str, Any]:
        began = time.perf_counter()
        entry = batching.new_entry()
        at = self.clock().isoformat(timespec="milliseconds")
        queued = False

        def once() -> tuple[dict[str, Any] | None, list[Sealed]]:
            nonlocal queued
            with self.engine.connect() as conn:
                conn.execution_options(isolation_level="AUTOCOMMIT")  # a statement each
                if not queued:
                    try:
                        batching.enqueue(conn, entry, at, event, fields,
                                         relaxed=event in RELAXED)
                    except IntegrityError:  # an earlier attempt's commit went through
                        if not batching.queued_or_done(conn, entry):
                            raise
                    queued = True
                return batching.take_head(conn, entry, self)

        record, done = self._retrying(once)
        if record is None:  # integrated, yet not found: nothing to return
            raise AuditUnavailable("audit trail unavailable")
        metrics.audit_append(event, time.perf_counter() - began)
        self._after(done)
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

    # -- checkpoints ----------------------------------------------------------------

    def checkpoint(self, upto: int | None = None) -> Checkpoint | None:
        """Sign the trail as it stands, or its first ``upto`` records (no-op when
        that is already signed)."""
        if self.keys is None:
            return None
        with self.engine.connect() as conn:
            if conn.dialect.name == "sqlite":  # read and write in one go (WAL snapshots)
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            signed = self._sign_head(conn, upto=upto)
            conn.commit()
        if signed is None:
            return self.latest()
        self.cadence.signed(signed)
        return signed

    def checkpoint_if_due(self, now: datetime | None = None) -> float | None:
        """The time-based checkpoint, for every broker process at once: whichever
        takes the checkpoint lock signs when records were added and the latest
        checkpoint is ``cadence.interval_s`` old; the others see it and do nothing.
        Returns the seconds until one is due again (None: nothing left to sign)."""
        if self.keys is None or not self.cadence.interval_s:
            return None
        self.integrate_pending()  # a writer that died after queueing left its entry
        now = now or datetime.now(UTC)
        with self.engine.connect() as conn:
            if not _take_the_checkpoint_lock(conn):
                conn.rollback()
                return self.cadence.interval_s  # another process is signing; look again
            latest = conn.execute(select(audit_checkpoints.c.tree_size, audit_checkpoints.c.at)
                                  .order_by(audit_checkpoints.c.tree_size.desc()).limit(1)
                                  ).first()
            head = conn.execute(_HEAD).first()
            wait = due_in(head.seq if head else 0, latest.tree_size if latest else 0,
                          latest.at if latest else None, now, self.cadence.interval_s)
            signed = self._sign_head(conn, at=now) if wait == 0 else None
            conn.commit()
        if signed is not None:
            self.cadence.signed(signed)
            return None
        return wait

    def _sign_head(self, conn: Connection, at: datetime | None = None,
                   upto: int | None = None) -> Checkpoint | None:
        """Sign and store a checkpoint of the head (or of the first ``upto`` records),
        in ``conn``'s transaction (the caller commits); None when that is signed
        already or cannot be (a gap)."""
        # from the largest checkpoint not past ``upto``: a writer signing at record
        # N may come after another signed at a later multiple, and N is still due
        latest = self._latest_stored(conn, upto)
        size, frontier = 0, []
        if latest is not None:
            size, frontier = latest.tree_size, [bytes.fromhex(h) for h in latest.frontier]
        heads = select(audit_records.c.seq, audit_records.c.hash)
        if upto is not None:  # a checkpoint due at a record: others may have written since
            heads = heads.where(audit_records.c.seq <= upto)
        head = conn.execute(heads.order_by(audit_records.c.seq.desc()).limit(1)).first()
        if head is None or head.seq <= size:
            return None
        frontier, size = frontier_extend(frontier, size, self._leaves(conn, size + 1, head.seq))
        if size != head.seq:
            return None  # a gap: verify will name it
        cp = sign_checkpoint(Checkpoint(
            log=self.log_id, tree_size=size, root_hash=frontier_root(frontier).hex(),
            head_hash=head.hash,
            at=(at or datetime.now(UTC)).isoformat(timespec="milliseconds")), self.keys.key)
        try:
            conn.execute(audit_checkpoints.insert().values(
                tree_size=cp.tree_size, at=cp.at, root_hash=cp.root_hash,
                head_hash=cp.head_hash, kid=cp.kid, signed=cp.signed,
                frontier=json.dumps([h.hex() for h in frontier])))
        except IntegrityError:
            conn.rollback()
            return None  # another process signed the same size
        return cp

    def latest_signed(self) -> str | None:
        """The latest checkpoint's JWS, what every ``federator-lookup/1`` request
        carries (``Federator-Checkpoint``); read at most once a second per process."""
        return self.cadence.latest_signed(self.latest)

    def latest(self) -> Checkpoint | None:
        return self.covering(None)

    def close(self) -> None:
        """Stop this process's checkpoint timer (the broker is shutting down)."""
        self.cadence.close()

    def covering(self, seq: int | None) -> Checkpoint | None:
        """The smallest checkpoint covering record ``seq`` (None: the latest)."""
        query = select(audit_checkpoints)
        if seq is None:
            query = query.order_by(audit_checkpoints.c.tree_size.desc())
        else:
            query = query.where(audit_checkpoints.c.tree_size >= seq).order_by(
                audit_checkpoints.c.tree_size)
        with self.engine.connect() as conn:
            row = conn.execute(query.limit(1)).mappings().first()
        if row is None:
            return None
        return Checkpoint(log=self.log_id, tree_size=row["tree_size"], root_hash=row["root_hash"],
                          head_hash=row["head_hash"], at=row["at"], kid=row["kid"],
                          signed=row["signed"])

    def leaf_hashes(self, size: int) -> list[bytes]:
        """RFC 9162 leaf hashes of records 1..size, for proofs."""
        with self.engine.connect() as conn:
            return list(self._leaves(conn, 1, size))

    @staticmethod
    def _latest_stored(conn: Connection, upto: int | None = None) -> StoredCheckpoint | None:
        query = select(audit_checkpoints)
        if upto is not None:
            query = query.where(audit_checkpoints.c.tree_size <= upto)
        row = conn.execute(query.order_by(
            audit_checkpoints.c.tree_size.desc()).limit(1)).mappings().first()
        if row is None:
            return None
        return StoredCheckpoint(row["tree_size"], row["signed"],
                                tuple(json.loads(row["frontier"])))

    @staticmethod
    def _leaves(conn: Connection, first: int, last: int, batch: int = 5000
                ) -> Iterator[bytes]:
        """RFC 9162 leaf hashes of records first..last (a pruned record's is kept)."""
        cursor = first
        while cursor <= last:
            chunk = conn.execute(
                select(audit_records.c.seq, audit_records.c.body, audit_records.c.leaf)
                .where(audit_records.c.seq >= cursor, audit_records.c.seq <= last)
                .order_by(audit_records.c.seq).limit(batch)).all()
            if not chunk:
                return
            for row in chunk:
                if row.seq != cursor:
                    return
                yield bytes.fromhex(row.leaf) if row.body == "" else leaf_hash(row.body.encode())
                cursor += 1

    # -- reading and verifying --------------------------------------------------------

    def records(self, *, event: str | None = None, lookup_id: str | None = None,
                limit: int = 100) -> list[dict[str, Any]]:
        query = select(audit_records).order_by(audit_records.c.seq)
        if event:
            query = query.where(audit_records.c.event == event)
        if lookup_id:
            query = query.where(audit_records.c.lookup_id == lookup_id)
        with self.engine.connect() as conn:
            rows = conn.execute(query.limit(limit)).mappings().all()
        return [{**open_record(json.loads(r["body"]), r["texts"]),
                 "prev_hash": r["prev_hash"], "hash": r["hash"]} for r in rows if r["body"]]

    def verify(self, *, start: int = 1, end: int | None = None, batch: int = 5000,
               jwks: Mapping[str, Any] | None = None,
               held: Sequence[StoredCheckpoint] = ()) -> Verdict:
        """Walk the chain from ``start`` (default: the first record) and check
        every signed checkpoint it reaches, the trail's own and those ``held``
        outside it, with ``jwks`` (default: every key the broker ever signed with)."""
        prev = GENESIS
        if jwks is None and self.keys is not None:
            jwks = self.keys.history_jwks()
        with self.engine.connect() as conn:
            if start > 1:
                before = conn.execute(
                    select(audit_records.c.hash).where(audit_records.c.seq == start - 1)
                ).scalar()
                if before is None:
                    return Verdict(False, 0, start - 1, f"record {start - 1} is missing")
                prev = before
            stored = [StoredCheckpoint(r.tree_size, r.signed, tuple(json.loads(r.frontier)))
                      for r in conn.execute(select(audit_checkpoints)).all()]

            def rows() -> Iterator[Mapping[str, Any]]:
                cursor = start
                while end is None or cursor <= end:
                    query = (select(audit_records.c.seq, audit_records.c.body,
                                    audit_records.c.prev_hash, audit_records.c.hash,
                                    audit_records.c.texts, audit_records.c.leaf,
                                    *(audit_records.c[k] for k in MIRRORED))
                             .where(audit_records.c.seq >= cursor)
                             .order_by(audit_records.c.seq).limit(batch))
                    if end is not None:
                        query = query.where(audit_records.c.seq <= end)
                    chunk = conn.execute(query).mappings().all()
                    if not chunk:
                        return
                    yield from chunk
                    cursor = chunk[-1]["seq"] + 1

            return verify_trail(rows(), [*stored, *held], jwks=jwks, start_seq=start,
                                start_prev=prev, end=end)


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


#: Key of the PostgreSQL advisory lock the time-based checkpoint is signed under.
CHECKPOINT_LOCK = 0x61756475


def _take_the_checkpoint_lock(conn: Connection) -> bool:
    """PostgreSQL: a transaction advisory lock, if free (one process signs, the
    others go on); SQLite: its write lock (BEGIN IMMEDIATE), waiting for it."""
    dialect = conn.dialect.name
    if dialect == "postgresql":
        return bool(conn.execute(text("SELECT pg_try_advisory_xact_lock(:key)"),
                                 {"key": CHECKPOINT_LOCK}).scalar())
    if dialect == "sqlite":
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    return True
