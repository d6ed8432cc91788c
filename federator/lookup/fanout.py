"""Fan-out: ask each authority in parallel, all bounded by one deadline.

Clients that speak on an event loop (``federator-lookup/1``: the hot path) run as
tasks on one loop thread per broker process; the others (FHIR, plug-ins) on a
bounded thread pool. Both report into one queue that the lookup reads until its
deadline, so answers stream out in the order they arrive, whichever side they
came from.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import os
import queue
import threading
import time
from collections.abc import Callable, Coroutine, Iterator, Mapping, Sequence
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from opentelemetry import trace

from adapters.base import BUSY, AdapterFailure, NotSent
from adapters.fhir_paging import partial_detail
from adapters.protocol import left_out_detail
from adapters.tracing import OFF, Tracing, attributes, current, endpoint_host, note
from federator.lookup.routing import Endpoint
from federator.names import ERROR, FAILURES, MATCH, TIMEOUT, UNAVAILABLE

Ask = Callable[[Endpoint, float], Mapping[str, Any]]
"""``ask(endpoint, deadline) -> answer``; raises ``AdapterFailure``."""

Answer = Coroutine[Any, Any, Mapping[str, Any]]
AsyncAsk = Callable[[Endpoint, float], Answer | None]
"""``aask(endpoint, deadline)``: the call as a coroutine for the event loop, or
``None`` when this endpoint's client only works on a thread."""


@dataclass(frozen=True)
class Calls:
    """How one lookup asks each authority (``federator.lookup.dispatch`` makes them)."""

    ask: Ask
    aask: AsyncAsk | None = None


@dataclass
class Outcome:
    id: str
    name: str
    #: one of ``federator.names.OUTCOMES``
    status: str
    latency_ms: int
    detail: str | None = None
    professionals: list[dict[str, Any]] = field(default_factory=list)
    notice: str | None = None
    #: False when the call never left the broker (its workers, or its connections to
    #: that authority, all busy until the deadline)
    sent: bool = True
    #: How sure the authority is that its record is this child (0..1), the details
    #: that agreed, and on a possible match those that would settle it
    confidence: float | None = None
    matched_on: tuple[str, ...] = ()
    ask_for: tuple[str, ...] = ()
    #: the authority's opaque reference to the record it matched (kept in the trail,
    #: never shown): the trail follows the matched child, not the typed details
    record_ref: str | None = None
    #: professionals the broker left out of this answer (``detail`` says why)
    dropped: int = 0
    #: why the authority's answer is partial (``adapters.fhir_paging.PARTIAL_REASONS``):
    #: what it could read was answered, and ``detail`` says what it could not
    partial: tuple[str, ...] = ()

    def public(self) -> dict[str, Any]:
        shown: dict[str, Any] = {"id": self.id, "name": self.name, "outcome": self.status,
                                 "latency_ms": self.latency_ms, "detail": self.detail}
        if self.confidence is not None:
            shown["confidence"] = self.confidence
        if self.matched_on:
            shown["matched_on"] = list(self.matched_on)
        if self.ask_for:
            shown["ask_for"] = list(self.ask_for)
        if self.partial:
            shown["partial"] = list(self.partial)
        return shown


def unavailable(endpoint: Endpoint, detail: str) -> Outcome:
    return Outcome(endpoint.id, endpoint.name, UNAVAILABLE, 0, detail)


class FanOut:
    """A bounded thread pool and one event loop, shared by all lookups of one
    broker process."""

    def __init__(self, workers: int, tracing: Tracing = OFF) -> None:
        #: a span per authority call, children of the lookup's span (``run(parent=)``)
        self.tracing = tracing
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="fanout")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_pid = 0
        self._lock = threading.Lock()
        self._closers: list[Callable[[], Coroutine[Any, Any, None]]] = []

    def on_shutdown(self, close: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """``close()`` runs on the loop at shutdown (a client's idle connections)."""
        self._closers.append(close)

    def loop(self) -> asyncio.AbstractEventLoop:
        """The loop thread, started on first use (and again in a forked child)."""
        with self._lock:
            if self._loop is None or self._loop_pid != os.getpid():
                loop = asyncio.new_event_loop()
                threading.Thread(target=_serve, args=(loop,), name="fanout-loop",
                                 daemon=True).start()
                self._loop, self._loop_pid = loop, os.getpid()
            return self._loop

    def run(self, endpoints: Sequence[Endpoint], calls: Calls, *, deadline: float,
            parent: Any = None) -> Iterator[Outcome]:
        """Yield each authority's outcome as it arrives; the rest time out at the deadline.
        ``parent``: the lookup's span, when tracing is on (a child span per call)."""
        spans: dict[int, Any] = {}
        try:
            yield from self._run(endpoints, calls, deadline, parent, spans)
        finally:
            for span in spans.values():  # the caller stopped reading
                span.end()

    def _run(self, endpoints: Sequence[Endpoint], calls: Calls, deadline: float,
             parent: Any, spans: dict[int, Any]) -> Iterator[Outcome]:
        ask, aask = calls.ask, calls.aask
        traced = parent is not None and self.tracing.enabled
        started = time.monotonic()
        arrived: queue.SimpleQueue[list[tuple[int, Done]]] = queue.SimpleQueue()
        on_threads: dict[int, Future[Mapping[str, Any]]] = {}
        on_loop: list[tuple[int, Answer]] = []
        for i, endpoint in enumerate(endpoints):
            span = self._call_span(endpoint, parent) if traced else None
            if span is not None:
                spans[i] = span
            call = aask(endpoint, deadline) if aask is not None else None
            if call is not None:
                on_loop.append((i, call if span is None else _within(span, call)))
                continue
            # a context copy per call (the request id reaches the adapter's X-Request-Id)
            run = ask if span is None else functools.partial(_ask_within, span, ask)
            future = self.pool.submit(contextvars.copy_context().run, run, endpoint, deadline)
            future.add_done_callback(functools.partial(_report, arrived, i))
            on_threads[i] = future
        # The loop's calls start together: one wake-up of the loop per lookup, not per call.
        batch = (asyncio.run_coroutine_threadsafe(_start(on_loop, arrived), self.loop())
                 if on_loop else None)
        pending = set(range(len(endpoints)))
        while pending:
            try:
                batch_done = arrived.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            for i, done in batch_done:
                pending.discard(i)
                yield _ended(spans.pop(i, None), _outcome(endpoints[i], done, started))
        if pending and batch is not None:
            batch.cancel()  # the loop's calls still out are cancelled, closing their connections
        for i in sorted(pending):
            # A thread call still queued was never sent: all workers were busy until
            # the deadline.
            never_sent = i in on_threads and on_threads[i].cancel()
            endpoint = endpoints[i]
            yield _ended(spans.pop(i, None), Outcome(
                endpoint.id, endpoint.name, TIMEOUT, int((time.monotonic() - started) * 1000),
                BUSY if never_sent else "no answer before the deadline", sent=not never_sent))

    def _call_span(self, endpoint: Endpoint, parent: Any) -> Any:
        """The call's span (a client span, child of the lookup's), not yet current."""
        host, port = endpoint_host(endpoint.url)
        return self.tracing.tracer.start_span(
            "federator.authority_call", context=trace.set_span_in_context(parent),
            kind=trace.SpanKind.CLIENT, attributes=attributes(
                authority_id=endpoint.id, protocol=endpoint.protocol, host=host, port=port))

    def shutdown(self) -> None:
        self.tracing.shutdown()  # the spans still batched are exported first
        self.pool.shutdown(wait=False, cancel_futures=True)
        with self._lock:
            loop, self._loop = self._loop, None
        if loop is not None and self._loop_pid == os.getpid():
            try:
                asyncio.run_coroutine_threadsafe(self._close(), loop).result(timeout=5)
            finally:
                loop.call_soon_threadsafe(loop.stop)

    async def _close(self) -> None:
        # Calls still out (a lookup before its deadline) are cancelled and close their
        # connections: a stopped loop would leave them open.
        calls = asyncio.all_tasks() - {asyncio.current_task()}
        for call in calls:
            call.cancel()
        await asyncio.gather(*calls, return_exceptions=True)
        for close in self._closers:
            await close()
        await asyncio.sleep(0)  # closed transports finish on the next turn


Done = Future[Mapping[str, Any]] | asyncio.Future[Mapping[str, Any]]


def _ask_within(span: Any, ask: Ask, endpoint: Endpoint, deadline: float) -> Mapping[str, Any]:
    """The thread's call with its span current (its transport sends ``traceparent``)."""
    with current(span):
        return ask(endpoint, deadline)


async def _within(span: Any, call: Answer) -> Mapping[str, Any]:
    """The loop's call with its span current in its own task's context."""
    with current(span):
        return await call


def _ended(span: Any, outcome: Outcome) -> Outcome:
    """End the call's span with what came of it."""
    if span is not None:
        note(span, outcome=outcome.status, latency_ms=outcome.latency_ms, sent=outcome.sent)
        if outcome.status in FAILURES:
            span.set_status(trace.StatusCode.ERROR)
        span.end()
    return outcome


def _report(arrived: queue.SimpleQueue[list[tuple[int, Done]]], i: int, done: Done) -> None:
    arrived.put([(i, done)])


class _Reports:
    """The loop's reports to the lookup's thread, gathered per turn of the loop:
    answers that arrive together wake the thread once (each wake-up is a GIL
    hand-over), yet none waits longer than the turn."""

    def __init__(self, arrived: queue.SimpleQueue[list[tuple[int, Done]]]) -> None:
        self.arrived = arrived
        self.ready: list[tuple[int, Done]] = []

    def report(self, i: int, done: Done) -> None:
        if not self.ready:
            asyncio.get_running_loop().call_soon(self.flush)
        self.ready.append((i, done))

    def flush(self) -> None:
        ready, self.ready = self.ready, []
        self.arrived.put(ready)


async def _start(calls: Sequence[tuple[int, Answer]],
                 arrived: queue.SimpleQueue[list[tuple[int, Done]]]) -> None:
    """Run one lookup's calls on the loop, each reporting as it finishes; cancelled
    at the deadline, which cancels the calls still out."""
    reports = _Reports(arrived)
    tasks = []
    for i, call in calls:
        task = asyncio.ensure_future(call)
        task.add_done_callback(functools.partial(reports.report, i))
        tasks.append(task)
    try:
        await asyncio.wait(tasks)
    except asyncio.CancelledError:
        for task in tasks:
            task.cancel()
        raise


def _serve(loop: asyncio.AbstractEventLoop) -> None:
    asyncio.set_event_loop(loop)
    try:
        loop.run_forever()
    finally:
        loop.close()


def _outcome(endpoint: Endpoint, future: Done, started: float) -> Outcome:
    elapsed = int((time.monotonic() - started) * 1000)
    try:
        answer = future.result()
    except (CancelledError, asyncio.CancelledError):
        return Outcome(endpoint.id, endpoint.name, TIMEOUT, elapsed,
                       "no answer before the deadline")
    except AdapterFailure as e:
        return Outcome(endpoint.id, endpoint.name, e.outcome, elapsed, e.detail,
                       sent=not isinstance(e, NotSent))
    except Exception:  # an adapter bug is that authority's error, never the lookup's
        return Outcome(endpoint.id, endpoint.name, ERROR, elapsed, "adapter failed")
    status = answer["status"]
    left_out = answer.get("left_out") or {}
    partial = answer.get("partial") or {}
    detail = "; ".join(filter(None, (partial_detail(partial), left_out_detail(left_out))))
    return Outcome(
        endpoint.id, endpoint.name, status, int(answer.get("latency_ms", elapsed)),
        detail or None, list(answer.get("professionals") or []),
        answer.get("notice"), dropped=sum(left_out.values()),
        confidence=answer.get("confidence"),
        matched_on=tuple(answer.get("matched_on") or ()),
        ask_for=tuple(answer.get("ask_for") or ()),
        record_ref=answer.get("record_ref") if status == MATCH else None,
        partial=tuple(sorted(partial)),
    )
