"""A lookup's audit statement: its entry committed to ``audit_queue`` (PostgreSQL),
over the driver directly, from a pool of its own.

This is the one statement a lookup waits on for its trail, twice per lookup
(``AuditTrail.enqueue``). Through SQLAlchemy's ``Connection`` it cost 0.36 ms of
the broker's CPU: the pool's liveness ping (a round trip of its own, before every
statement), the statement's compilation and result set-up. Here a connection
in autocommit is checked out without a ping and the statement is prepared once
per connection (psycopg ``prepare=True``). A connection the server dropped fails
its statement instead of its ping: it is thrown away and the append retried, as
any failed append is (``Appender._retrying``), and SQLAlchemy's pool then
recycles every connection older than the failure.

The pool is made lazily, in the process that uses it (after gunicorn's fork):
up to 16 connections a process (4 kept), beside the engine's own pool; an enqueue
beyond that waits for one (docs/production.md counts them).
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Mapping
from typing import Any

import psycopg
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import DatabaseError, IntegrityError, OperationalError

#: A NUL in the encoded fields: ``\u0000`` after an even run of backslashes (an odd
#: run would be an escaped backslash followed by the text "u0000")
_NUL = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")


def encode(fields: Mapping[str, Any]) -> str:
    """The entry's fields as the queue holds them (JSON; what JSON cannot hold, as text)."""
    return json.dumps(fields, default=str)


def holds_nul(encoded: str) -> bool:
    """Whether encoded fields hold a NUL anywhere (keys, values, and what ``encode``
    turned into text): PostgreSQL's text refuses it, so such an entry, queued,
    would fail every integrator's batch and block the queue behind it (issue 18
    review). One search of the text already made for the queue."""
    return "\\u0000" in encoded and _NUL.search(encoded) is not None


_INSERT = "INSERT INTO audit_queue (entry, at, event, fields) VALUES (%s, %s, %s, %s)"
#: The same, its commit not waiting for the disk (``RELAXED`` events)
_INSERT_RELAXED = ("INSERT INTO audit_queue (entry, at, event, fields) SELECT %s, %s, %s, %s "
                   "FROM set_config('synchronous_commit', 'off', true)")


class QueueWriter:
    def __init__(self, engine: Engine, *, pool_size: int = 4, max_overflow: int = 12) -> None:
        self._engine = engine
        self._sizes = pool_size, max_overflow
        self._lock = threading.Lock()
        self._pool: Engine | None = None
        self._pid = 0

    def _pooled(self) -> Engine:
        with self._lock:
            if self._pool is None or self._pid != os.getpid():
                if self._pool is not None:  # the parent's, before a fork: leave its sockets be
                    self._pool.dispose(close=False)
                pool = create_engine(self._engine.url, pool_size=self._sizes[0],
                                     max_overflow=self._sizes[1], pool_pre_ping=False)
                event.listen(pool, "connect", _autocommit)
                self._pool, self._pid = pool, os.getpid()
            return self._pool

    def write(self, entry: str, at: str, event_name: str, fields: Mapping[str, Any] | str, *,
              relaxed: bool) -> None:
        """Commit the entry (flushed to disk unless ``relaxed``); ``fields`` as a
        mapping or already ``encode``d. Raises SQLAlchemy's ``IntegrityError`` (the
        entry is there already) or ``OperationalError``."""
        statement = _INSERT_RELAXED if relaxed else _INSERT
        params = (entry, at, event_name, fields if isinstance(fields, str) else encode(fields))
        raw = self._pooled().raw_connection()
        try:
            with raw.cursor() as cursor:
                cursor.execute(statement, params, prepare=True)
        except psycopg.IntegrityError as e:
            raise IntegrityError(statement, params, e) from e
        except psycopg.OperationalError as e:  # dropped, restarted: not this connection again
            raw.invalidate()
            raise OperationalError(statement, params, e) from e
        except psycopg.Error as e:
            raise DatabaseError(statement, params, e) from e
        finally:
            raw.close()  # back to the pool (or gone, if invalidated)

    def dispose(self) -> None:
        with self._lock:
            if self._pool is not None and self._pid == os.getpid():
                self._pool.dispose()
            self._pool = None


def _autocommit(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.autocommit = True
