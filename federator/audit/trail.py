"""Appending to and reading the trail in the database."""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, event, select, text
from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError

from federator import metrics
from federator.audit.cadence import Cadence, due_in
from federator.audit.chain import GENESIS, INDEXED, Verdict, canonical, record_hash
from federator.audit.checkpoints import Checkpoint, sign_checkpoint
from federator.audit.flags import FlagLimits, alert_flags, completion_flags, lookup_flags
from federator.audit.history import load_history, matched_history
from federator.audit.merkle import frontier_extend, frontier_root
from federator.audit.reading import leaves, verify_stored
from federator.audit.redaction import open_record, seal
from federator.audit.tables import (
    audit_authorities,
    audit_checkpoints,
    audit_child_refs,
    audit_flags,
)
from federator.audit.tree_store import fill_at_signing, take_lock
from federator.audit.verification import StoredCheckpoint
from federator.names import LOOKUP_COMPLETED, LOOKUP_REQUESTED, MATCH
from federator.storage import audit_records

log = logging.getLogger(__name__)



#: Events committed without waiting for the disk (SQLite ``synchronous=NORMAL`` in
#: WAL mode, PostgreSQL ``synchronous_commit=off``, for that transaction only).
#: ``lookup.completed`` records what already happened: nothing waits on it, unlike
#: ``lookup.requested``, which must be on disk before any authority is asked, and
#: is (every other event commits with a flush). Such a commit survives the
#: process being killed (it is in the database's log, in the operating system's
#: hands); only a power cut or kernel crash in the next moments can lose it, and
#: then only as the tail of the log: both databases replay their log in order, so
#: a later flushed record (the next ``lookup.requested``) carries every earlier
#: one to disk with it, and the chain never gets a gap.
RELAXED = frozenset({LOOKUP_COMPLETED})

_HEAD = (select(audit_records.c.seq, audit_records.c.hash)
         .order_by(audit_records.c.seq.desc()).limit(1))
#: Built once; every column, so one compiled statement serves every event.
_INSERT = audit_records.insert()


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
        """Write one record after the current head; retried when another process wins."""
        record = self._append(event, fields, None)
        assert record is not None
        return record

    def append_unless(self, written: Callable[[Connection], bool], event: str,
                      **fields: Any) -> dict[str, Any] | None:
        """Write the record unless ``written(conn)`` says it (or what makes it moot)
        is already there: checked while holding the head, so of several processes
        appending the same record at once exactly one writes it. None when not written."""
        return self._append(event, fields, written)

    def _append(self, event: str, fields: Mapping[str, Any],
                written: Callable[[Connection], bool] | None) -> dict[str, Any] | None:
        last_error: Exception | None = None
        for attempt in range(self.attempts):
            try:
                began = time.perf_counter()
                record = self._append_once(event, fields, written)
                if record is None:
                    return None
                metrics.audit_append(event, time.perf_counter() - began)
                break
            except (IntegrityError, OperationalError) as e:
                last_error = e
                time.sleep(random.uniform(0.5, 1.0) * min(0.002 * (2**attempt), 0.1))  # noqa: S311
            except SQLAlchemyError as e:
                raise AuditUnavailable("audit trail unavailable") from e
        else:
            raise AuditUnavailable("audit trail unavailable") from last_error
        if self.checkpoint_every and record["seq"] % self.checkpoint_every == 0:
            try:
                # at this record: other writers may have appended since
                self.checkpoint(upto=record["seq"])
            except SQLAlchemyError:  # the record stands; the next checkpoint covers it
                log.warning("audit checkpoint at %s not written", record["seq"])
        if self.keys is not None:
            self.cadence.added()
        for flag in alert_flags(record):
            metrics.audit_alert(flag)
            log.warning("audit alert: %s at record %s", flag, record["seq"])
        if record.get("flags"):
            for listener in self.listeners:
                try:
                    listener(record)
                except Exception:  # the record stands: what it reports is not undone
                    log.exception("a listener failed on audit record %s", record["seq"])
        return record

    def _append_once(self, event: str, fields: Mapping[str, Any],
                     written: Callable[[Connection], bool] | None = None
                     ) -> dict[str, Any] | None:
        relaxed = event in RELAXED
        with self.engine.connect() as conn:
            if relaxed and conn.dialect.name == "sqlite":
                # Outside the transaction: SQLite refuses to change it inside one.
                conn.exec_driver_sql("PRAGMA synchronous=NORMAL")
            try:
                _take_the_head(conn)
                if written is not None and written(conn):
                    conn.rollback()
                    return None
                if relaxed and conn.dialect.name == "postgresql":
                    conn.execute(text("SET LOCAL synchronous_commit TO OFF"))
                record = self._write(conn, event, fields)
                conn.commit()
            finally:
                if relaxed and conn.dialect.name == "sqlite":
                    conn.rollback()  # a no-op after the commit; ends a failed one
                    conn.exec_driver_sql("PRAGMA synchronous=FULL")
                    conn.commit()
        return record

    def _write(self, conn: Connection, event: str, fields: Mapping[str, Any]
               ) -> dict[str, Any]:
        head = conn.execute(_HEAD).first()
        seq, prev = (head.seq + 1, head.hash) if head else (1, GENESIS)
        record = {"seq": seq, "at": self.clock().isoformat(timespec="milliseconds"),
                  "event": event, **fields}
        refs = _record_refs(record) if event == LOOKUP_COMPLETED else []
        if event == LOOKUP_REQUESTED:
            # Flags the caller computed from what only it saw (own_family_name) come first.
            record["flags"] = [*(record.get("flags") or []), *lookup_flags(
                record, load_history(conn, record, self.flag_limits), self.flag_limits)]
        elif refs:
            flags_ = completion_flags(*matched_history(conn, record, refs, self.flag_limits),
                                      self.flag_limits)
            if flags_:
                record["flags"] = flags_
        hashed, texts = seal(record)  # free text by its salted hash: redactable (format 2)
        body = canonical(hashed)
        digest = record_hash(prev, body)
        row = {k: hashed.get(k) for k in INDEXED}
        conn.execute(_INSERT, {"seq": seq, "at": record["at"], "event": event, "body": body,
                               "prev_hash": prev, "hash": digest, "texts": texts, **row})
        authorities = sorted(_authorities(record))
        if authorities:
            conn.execute(audit_authorities.insert(),
                         [{"seq": seq, "authority_id": a} for a in authorities])
        if refs:
            conn.execute(audit_child_refs.insert(),
                         [{"seq": seq, "authority_id": a, "record_ref": ref} for a, ref in refs])
        flags = sorted({f["flag"] for f in record.get("flags") or []
                        if isinstance(f, Mapping) and f.get("flag")})
        if flags:
            conn.execute(audit_flags.insert(), [{"seq": seq, "flag": f} for f in flags])
        return {**record, **({"sealed": hashed["sealed"]} if texts else {}),
                "prev_hash": prev, "hash": digest}

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
        latest = self._latest_stored(conn)
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
            return list(leaves(conn, 1, size))

    @staticmethod
    def _latest_stored(conn: Connection) -> StoredCheckpoint | None:
        row = conn.execute(select(audit_checkpoints).order_by(
            audit_checkpoints.c.tree_size.desc()).limit(1)).mappings().first()
        if row is None:
            return None
        return StoredCheckpoint(row["tree_size"], row["signed"],
                                tuple(json.loads(row["frontier"])))

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


#: Key of the PostgreSQL advisory lock that queues appenders (any fixed number).
HEAD_LOCK = 0x61756474


def _take_the_head(conn: Connection) -> None:
    """Queue writers instead of letting them race for the same seq: PostgreSQL
    takes a transaction advisory lock, SQLite its write lock (BEGIN IMMEDIATE,
    waiting up to the busy timeout). The primary key and the unique hashes stay
    the guarantee; this only spares the retries."""
    dialect = conn.dialect.name
    if dialect == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": HEAD_LOCK})
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


def _record_refs(record: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Each authority's reference to the record it matched, once per authority."""
    refs = {o["id"][:64]: o["record_ref"][:128] for o in record.get("outcomes") or []
            if isinstance(o, Mapping) and isinstance(o.get("id"), str)
            and o.get("outcome") == MATCH
            and isinstance(o.get("record_ref"), str) and o["record_ref"]}
    return sorted(refs.items())


def _authorities(record: Mapping[str, Any]) -> set[str]:
    found = {a for a in record.get("authorities") or [] if isinstance(a, str)}
    # An authority not asked (suspended, circuit open) never received the child's
    # identity: the lookup is not theirs to see, nor found under their name.
    found |= {o["id"] for o in record.get("outcomes") or []
              if isinstance(o, Mapping) and isinstance(o.get("id"), str)
              and not o.get("not_asked")}
    return {a[:64] for a in found}
