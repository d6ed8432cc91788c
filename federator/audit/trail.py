"""Appending to and reading the trail in the database."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, event, select, text
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from federator.audit.appender import Appender, AuditUnavailable
from federator.audit.appending import RELAXED
from federator.audit.batching import HEAD_LOCK
from federator.audit.cadence import Cadence, due_in
from federator.audit.chain import Verdict
from federator.audit.checkpoints import Checkpoint, sign_checkpoint
from federator.audit.flags import FlagLimits
from federator.audit.merkle import frontier_extend, frontier_root
from federator.audit.queue_writer import QueueWriter
from federator.audit.reading import leaves, verify_stored
from federator.audit.redaction import open_record
from federator.audit.sequencer import Sequencer
from federator.audit.tables import audit_checkpoints
from federator.audit.tree_store import fill_at_signing, take_lock
from federator.audit.verification import StoredCheckpoint
from federator.storage import audit_records

__all__ = ["HEAD_LOCK", "RELAXED", "AuditTrail", "AuditUnavailable"]

log = logging.getLogger(__name__)



_HEAD = (select(audit_records.c.seq, audit_records.c.hash)
         .order_by(audit_records.c.seq.desc()).limit(1))


class AuditTrail(Appender):
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
        #: the ``at`` of each record written (tests set it to write an old record)
        self.clock: Callable[[], datetime] = lambda: datetime.now(UTC)
        #: called with each flagged record once committed (``listen``)
        self.listeners: list[Callable[[dict[str, Any]], None]] = []
        #: integrates what ``enqueue`` queued, in this process's background (PostgreSQL)
        self.sequencer = Sequencer(self.integrate_pending)
        #: the lookup's queue statement, over the driver (``enqueue``; PostgreSQL)
        self.queue_writer = QueueWriter(engine)
        # the engine's owner is done with it: no more timers, nor integrating
        event.listen(engine, "engine_disposed", lambda _engine: self._stop_threads())

    def listen(self, listener: Callable[[dict[str, Any]], None]) -> None:
        """``listener(record)`` after each flagged record is committed, in the
        writer's thread: it must return at once (``federator.audit.alert_senders``)."""
        self.listeners.append(listener)

    def sign_with(self, keys: Any) -> None:
        """Checkpoints are signed with the broker's key (``key`` with a ``kid``)."""
        self.keys = keys

    # -- checkpoints ----------------------------------------------------------------

    def checkpoint(self, upto: int | None = None) -> Checkpoint | None:
        """Sign the trail as it stands, or its first ``upto`` records (no-op when
        that is already signed)."""
        if self.keys is None:
            return None
        with self.engine.connect() as conn:
            # SQLite: read and write in one go (WAL snapshots); PostgreSQL: one signer
            take_lock(conn)
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
        frontier, size = frontier_extend(frontier, size, leaves(conn, size + 1, head.seq))
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
        fill_at_signing(conn, size)  # the tree's nodes over these leaves, for proofs
        return cp

    def latest_signed(self) -> str | None:
        """The latest checkpoint's JWS, what every ``federator-lookup/1`` request
        carries (``Federator-Checkpoint``); read at most once a second per process."""
        return self.cadence.latest_signed(self.latest)

    def latest(self) -> Checkpoint | None:
        return self.covering(None)

    def _stop_threads(self) -> None:
        self.cadence.close()
        self.sequencer.close()
        self.queue_writer.dispose()

    def close(self) -> None:
        """Stop this process's checkpoint timer and sequencer (the broker is
        shutting down), integrating what is still queued."""
        self.cadence.close()
        self.sequencer.close()
        self.queue_writer.dispose()
        try:
            self.integrate_pending()
        except SQLAlchemyError:  # committed all the same: the next integrator takes them
            log.warning("audit entries left queued at shutdown")

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
            return list(leaves(conn, 1, size))

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

    # -- reading and verifying --------------------------------------------------------

    def records(self, *, event: str | None = None, lookup_id: str | None = None,
                limit: int = 100) -> list[dict[str, Any]]:
        """Records as they stand, after integrating what is queued."""
        self.integrate_pending()
        query = select(audit_records).order_by(audit_records.c.seq)
        if event:
            query = query.where(audit_records.c.event == event)
        if lookup_id:
            query = query.where(audit_records.c.lookup_id == lookup_id)
        with self.engine.connect() as conn:
            rows = conn.execute(query.limit(limit)).mappings().all()
        return [{**open_record(json.loads(r["body"]), r["texts"]),
                 "prev_hash": r["prev_hash"], "hash": r["hash"]} for r in rows if r["body"]]

    def verify(self, *, start: int = 1, end: int | None = None, batch: int = 10_000,
               jwks: Mapping[str, Any] | None = None,
               held: Sequence[StoredCheckpoint] = ()) -> Verdict:
        """Walk the chain from ``start`` (default: the first record) and check
        every signed checkpoint it reaches, the trail's own and those ``held``
        outside it, with ``jwks`` (default: every key the broker ever signed with):
        ``federator.audit.reading.verify_stored``."""
        if jwks is None and self.keys is not None:
            jwks = self.keys.history_jwks()
        return verify_stored(self.engine, start=start, end=end, batch=batch, jwks=jwks,
                             held=held)


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
