"""Fan-out: ask each authority in parallel, all bounded by one deadline."""

from __future__ import annotations

import contextvars
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from concurrent.futures import TimeoutError as FuturesTimeout
from dataclasses import dataclass, field
from typing import Any

from adapters.base import AdapterFailure
from federator.lookup.routing import Endpoint

Ask = Callable[[Endpoint, float], Mapping[str, Any]]
"""``ask(endpoint, deadline) -> answer``; raises ``AdapterFailure``."""


@dataclass
class Outcome:
    id: str
    name: str
    outcome: str
    latency_ms: int
    detail: str | None = None
    professionals: list[dict[str, Any]] = field(default_factory=list)
    notice: str | None = None

    def public(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "outcome": self.outcome,
                "latency_ms": self.latency_ms, "detail": self.detail}


def unavailable(endpoint: Endpoint, detail: str) -> Outcome:
    return Outcome(endpoint.id, endpoint.name, "unavailable", 0, detail)


class FanOut:
    """A bounded pool shared by all lookups of one broker process."""

    def __init__(self, workers: int) -> None:
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="fanout")

    def run(self, endpoints: Sequence[Endpoint], ask: Ask, *, deadline: float
            ) -> Iterator[Outcome]:
        """Yield each authority's outcome as it arrives; the rest time out at the deadline."""
        started = time.monotonic()
        futures: dict[Future[Mapping[str, Any]], Endpoint] = {
            # a context copy per call (the request id reaches the adapter's X-Request-Id)
            self.pool.submit(contextvars.copy_context().run, ask, endpoint, deadline): endpoint
            for endpoint in endpoints
        }
        pending = set(futures)
        # ``as_completed`` waits on every future once; calling ``wait(FIRST_COMPLETED)``
        # in a loop re-registers a waiter on each pending future per answer (O(n²)).
        try:
            for future in as_completed(futures, timeout=max(0.0, deadline - time.monotonic())):
                pending.discard(future)
                yield _outcome(futures[future], future, started)
        except FuturesTimeout:
            pass
        for future in pending:
            # A call still queued was never sent: all workers were busy until the deadline.
            never_sent = future.cancel()
            endpoint = futures[future]
            yield Outcome(endpoint.id, endpoint.name, "timeout",
                          int((time.monotonic() - started) * 1000),
                          "not asked before the deadline: the broker was busy" if never_sent
                          else "no answer before the deadline")

    def shutdown(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)


def _outcome(endpoint: Endpoint, future: Future[Mapping[str, Any]], started: float) -> Outcome:
    elapsed = int((time.monotonic() - started) * 1000)
    try:
        answer = future.result()
    except AdapterFailure as e:
        return Outcome(endpoint.id, endpoint.name, e.outcome, elapsed, e.detail)
    except Exception:  # an adapter bug is that authority's error, never the lookup's
        return Outcome(endpoint.id, endpoint.name, "error", elapsed, "adapter failed")
    status = answer["status"]
    return Outcome(
        endpoint.id, endpoint.name, status, int(answer.get("latency_ms", elapsed)),
        None, list(answer.get("professionals") or []), answer.get("notice"),
    )
