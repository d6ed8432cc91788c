"""The fan-out engine: calls on the event loop and on threads, one deadline."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from adapters.base import AdapterError, NotSent
from federator.lookup.fanout import Answer, Calls, FanOut
from federator.lookup.routing import Endpoint


def endpoint(name: str) -> Endpoint:
    return Endpoint(id=name, name=name.title(), code="E0", coverage=(), protocol="p",
                    url="http://x", timeout_ms=5000, contact="-", status="active")


@pytest.fixture
def fanout() -> Iterator[FanOut]:
    engine = FanOut(4)
    yield engine
    engine.shutdown()


def answer(status: str = "no_match") -> dict[str, Any]:
    return {"status": status, "latency_ms": 1}


def test_loop_and_thread_calls_arrive_in_the_order_they_finish(fanout: FanOut) -> None:
    threads: set[str] = set()
    # The finishing order is made, not left to sleeps racing on a loaded machine
    # (two sleeps 150 ms apart swapped under load): slow-loop finishes after
    # fast-loop has, slow-thread a while after slow-loop.
    fast_done = threading.Event()
    loop_done = threading.Event()

    def ask(e: Endpoint, deadline: float) -> Mapping[str, Any]:
        threads.add(threading.current_thread().name)
        if e.id == "slow-thread":
            assert loop_done.wait(5)
            time.sleep(0.3)
        return answer()

    async def call(e: Endpoint) -> Mapping[str, Any]:
        threads.add(threading.current_thread().name)
        if e.id == "slow-loop":
            while not fast_done.is_set():
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.2)
            loop_done.set()
            return answer("match")
        fast_done.set()
        return answer("no_match")

    def aask(e: Endpoint, deadline: float) -> Answer | None:
        return call(e) if e.id.endswith("loop") else None

    ends = [endpoint(n) for n in ("slow-thread", "slow-loop", "fast-loop")]
    got = [(o.id, o.status) for o in fanout.run(ends, Calls(ask, aask),
                                                  deadline=time.monotonic() + 5)]
    assert got == [("fast-loop", "no_match"), ("slow-loop", "match"),
                   ("slow-thread", "no_match")]
    assert "fanout-loop" in threads and any(t.startswith("fanout_") for t in threads)


def test_a_call_on_the_loop_still_running_at_the_deadline_is_cancelled(
        fanout: FanOut) -> None:
    cleaned = threading.Event()

    async def hang() -> Mapping[str, Any]:
        try:
            await asyncio.sleep(30)
        finally:
            cleaned.set()  # where the client closes its connection
        return answer()

    started = time.monotonic()
    calls = Calls(lambda e, d: answer(), lambda e, d: hang())
    [outcome] = fanout.run([endpoint("hang")], calls, deadline=time.monotonic() + 0.3)
    assert outcome.status == "timeout"
    assert outcome.detail == "no answer before the deadline"
    assert time.monotonic() - started < 5
    assert cleaned.wait(5)


def test_failures_on_the_loop_keep_their_outcome_and_a_bug_is_an_error(
        fanout: FanOut) -> None:
    async def refuse() -> Mapping[str, Any]:
        raise AdapterError("HTTP 401")

    async def bug() -> Mapping[str, Any]:
        raise KeyError("oops")

    async def busy() -> Mapping[str, Any]:
        raise NotSent("not asked before the deadline: the broker was busy")

    calls = {"refuse": refuse, "bug": bug, "busy": busy}
    got = {o.id: (o.status, o.detail, o.sent) for o in fanout.run(
        [endpoint("refuse"), endpoint("bug"), endpoint("busy")],
        Calls(lambda e, d: answer(), lambda e, d: calls[e.id]()), deadline=time.monotonic() + 5)}
    assert got == {"refuse": ("error", "HTTP 401", True),
                   "bug": ("error", "adapter failed", True),
                   "busy": ("timeout", "not asked before the deadline: the broker was busy",
                            False)}


def test_thread_calls_never_started_say_the_broker_was_busy() -> None:
    engine = FanOut(1)
    release = threading.Event()

    def ask(e: Endpoint, deadline: float) -> Mapping[str, Any]:
        release.wait(5)
        return answer()

    try:
        got = {o.id: (o.detail, o.sent) for o in engine.run(
            [endpoint("first"), endpoint("queued")], Calls(ask), deadline=time.monotonic() + 0.3)}
    finally:
        release.set()
        engine.shutdown()
    assert got == {"first": ("no answer before the deadline", True),
                   "queued": ("not asked before the deadline: the broker was busy", False)}


def test_shutdown_runs_the_closers_on_the_loop() -> None:
    engine = FanOut(1)
    closed: list[str] = []

    async def close() -> None:
        closed.append(threading.current_thread().name)

    engine.on_shutdown(close)

    async def call() -> Mapping[str, Any]:
        return answer()

    list(engine.run([endpoint("a")], Calls(lambda e, d: answer(), lambda e, d: call()),
                    deadline=time.monotonic() + 5))
    engine.shutdown()
    assert closed == ["fanout-loop"]


def test_shutdown_cancels_the_calls_still_out_before_the_loop_stops() -> None:
    """A lookup still waiting on an authority when the broker stops: its call is
    cancelled on the loop (where the client closes its connection), not left to a
    stopped loop."""
    engine = FanOut(1)
    cleaned = threading.Event()

    async def call(e: Endpoint) -> Mapping[str, Any]:
        if e.id == "hang":
            try:
                await asyncio.sleep(30)
            finally:
                cleaned.set()  # where the client closes its connection
        return answer()

    stream = engine.run([endpoint("fast"), endpoint("hang")],
                        Calls(lambda e, d: answer(), lambda e, d: call(e)),
                        deadline=time.monotonic() + 30)
    assert next(stream).id == "fast"  # "hang" is still out
    engine.shutdown()
    assert cleaned.is_set()
    stream.close()
