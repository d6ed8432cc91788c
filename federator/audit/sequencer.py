"""The process's sequencer: integrates queued audit entries into the chain in
the background, as a transparency log's sequencer does (PostgreSQL).

A lookup's own records (``lookup.requested``, ``lookup.completed``) are only
queued on its path (``Appender.enqueue``): the queue's commit is the durability
point, and nothing on the lookup's path reads the record back. Each enqueue
wakes this process's sequencer thread, which waits 50 ms (so that the entries of
lookups running alongside, and usually the same lookup's ``lookup.completed``,
join the same pass), then takes the trail's head lock (as any
append does: one integrator at a time across every broker process, the others
wait their turn in the database) and integrates every entry queued by then, in
batches (``federator.audit.batching``). Entries queued while it works wake it
again, so under load each pass integrates what several lookups queued.

Whatever reads the trail first integrates what is queued (``integrate_pending``:
the pages and APIs before each request, a retry, the time-based checkpoint, the
broker's start-up), so what was enqueued is read back as a record, and nothing
waits on this thread. A broker killed with entries queued leaves them to the
next integrator; none is lost (they are committed).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)


class Sequencer:
    """One thread per process at most, started by the first ``wake`` (after a
    fork too: gunicorn's workers each start their own)."""

    def __init__(self, integrate: Callable[[], int], *, gather_s: float = 0.05,
                 idle_s: float = 5.0, retry_s: float = 0.05, retry_max_s: float = 5.0) -> None:
        self._integrate = integrate
        self.gather_s, self.idle_s = gather_s, idle_s
        self._retry_s, self._retry_max_s = retry_s, retry_max_s
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pid = 0
        self._closed = False
        self._stopped = threading.Event()

    def wake(self) -> None:
        """Entries were queued: integrate them soon (returns at once)."""
        if self._closed:
            return  # the next integrator takes them (they are committed)
        self._wake.set()
        with self._lock:
            if self._thread is not None and self._pid == os.getpid() \
                    and self._thread.is_alive():
                return
            thread = threading.Thread(target=self._run, name="audit-sequencer", daemon=True)
            self._thread, self._pid = thread, os.getpid()
            thread.start()

    def running(self) -> bool:
        with self._lock:
            return (self._thread is not None and self._pid == os.getpid()
                    and self._thread.is_alive())

    def _run(self) -> None:
        failures = 0
        while not self._closed:
            self._wake.wait(timeout=self.idle_s)
            # let the entries of lookups running alongside join this pass
            if self._stopped.wait(self.gather_s):
                return
            self._wake.clear()
            try:
                self._integrate()
                failures = 0
            except Exception as e:  # a thread of its own: the entries stay queued
                failures += 1
                log.warning("audit entries not integrated yet (%s); trying again",
                            type(e).__name__)
                self._wake.set()
                if self._stopped.wait(min(self._retry_s * 2 ** min(failures, 16),
                                          self._retry_max_s)):
                    return

    def close(self, timeout: float = 10.0) -> None:
        """Stop this process's thread (the broker is shutting down), after the
        pass it is in; what is still queued is left to the next integrator."""
        with self._lock:
            self._closed = True
            self._stopped.set()
            thread = self._thread if self._pid == os.getpid() else None
        self._wake.set()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
