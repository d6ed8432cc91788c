"""Checkpoints on time, not only on count: when one is due, and the timer that
signs it in each broker process.

Whenever records were added, each process that added them sets a timer for
``FEDERATOR_AUDIT_CHECKPOINT_INTERVAL_S``; when it fires, the trail
(``AuditTrail.checkpoint_if_due``) takes the checkpoint lock, and signs only if
the latest checkpoint is that old: so one process signs (whichever takes the
lock), the others find it done, and a record is covered within the interval of
its append, however quiet the trail is afterwards. ``due_in`` is pure.

The same object keeps this process's copy of the latest signed checkpoint, the
one every ``federator-lookup/1`` request carries, read from the database at
most once a second.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

log = logging.getLogger(__name__)


def due_in(head: int, signed_size: int, signed_at: str | None, now: datetime,
           interval_s: float) -> float | None:
    """Seconds until a checkpoint is due: None when every record is signed, 0
    when one is due now (records unsigned and the latest checkpoint at least
    ``interval_s`` old, or none yet)."""
    if head <= signed_size:
        return None
    if signed_at is None:
        return 0.0
    try:
        age = (now - datetime.fromisoformat(signed_at)).total_seconds()
    except (TypeError, ValueError):
        return 0.0
    return 0.0 if age >= interval_s else interval_s - age


class Cadence:
    """The process's timer (one at most) and its cached latest checkpoint."""

    def __init__(self, interval_s: float, run: Callable[[], float | None], *,
                 cache_s: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval_s = interval_s
        self._run = run
        self._cache_s = cache_s
        self._clock = clock
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None
        self._due = 0.0
        self._pid = 0
        self._closed = False
        self._cached: tuple[float, str | None] | None = None

    def added(self) -> None:
        """Records were added: make sure a timer will look within the interval."""
        if self.interval_s:
            self._schedule(self.interval_s)

    def pending(self) -> bool:
        with self._lock:
            return self._live_timer()

    def _live_timer(self) -> bool:
        return (self._timer is not None and self._pid == os.getpid()
                and self._timer.is_alive())

    def _schedule(self, delay: float) -> None:
        with self._lock:
            if self._closed:
                return
            due = self._clock() + delay
            if self._live_timer() and self._due <= due:
                return
            if self._live_timer():
                assert self._timer is not None
                self._timer.cancel()
            timer = threading.Timer(delay, self._fire)
            timer.daemon = True
            timer.name = "audit-checkpoint"
            self._timer, self._due, self._pid = timer, due, os.getpid()
            timer.start()

    def _fire(self) -> None:
        with self._lock:
            if self._timer is threading.current_thread():
                self._timer = None
        try:
            wait = self._run()
        except Exception as e:  # a thread of its own: log, and let the next append retry
            log.warning("time-based audit checkpoint not written: %s", type(e).__name__)
            return
        if wait:
            self._schedule(wait)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            if self._live_timer():
                assert self._timer is not None
                self._timer.cancel()
            self._timer = None

    # -- the latest checkpoint, as requests carry it ----------------------------------

    def signed(self, checkpoint: Any) -> None:
        """This process signed ``checkpoint``: the next request carries it."""
        with self._lock:
            self._cached = (self._clock(), checkpoint.signed)

    def latest_signed(self, read: Callable[[], Any]) -> str | None:
        with self._lock:
            cached = self._cached
        if cached is not None and self._clock() - cached[0] < self._cache_s:
            return cached[1]
        checkpoint = read()
        token = checkpoint.signed if checkpoint is not None else None
        with self._lock:
            self._cached = (self._clock(), token)
        return token
