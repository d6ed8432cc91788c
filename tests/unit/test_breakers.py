"""Circuit breakers: the pure decision, the in-process store, and two broker
processes sharing one breaker through a real Redis."""

from __future__ import annotations

import time

import pytest

from federator.lookup.breakers import (
    CLOSED,
    OPEN,
    PROBE,
    BreakerPolicy,
    Breakers,
    Ticket,
    counts_as_failure,
    decide,
    judged,
)
from federator.state import SharedState, StateUnavailable

POLICY = BreakerPolicy(failures=3, window_s=60, cooldown_s=1, probe_s=5)


def test_decide_reads_open_then_half_open_then_closed() -> None:
    assert decide(True, True) == OPEN
    assert decide(True, False) == OPEN
    assert decide(False, True) == PROBE
    assert decide(False, False) == CLOSED


def test_only_timeouts_and_errors_count_against_an_authority() -> None:
    assert [o for o in ("match", "no_match", "declined", "timeout", "error", "unavailable")
            if counts_as_failure(o)] == ["timeout", "error"]


WAITS = [(100, 5000), (4999, 5000), (5000, 5000), (15000, 5000), (2000, 1000)]


@pytest.mark.parametrize("outcome", ["match", "no_match", "declined"])
@pytest.mark.parametrize("sent", [True, False])
@pytest.mark.parametrize(("given_ms", "fair_ms"), WAITS)
def test_an_answer_always_counts(outcome: str, sent: bool, given_ms: int,
                                 fair_ms: int) -> None:
    assert judged(outcome, sent=sent, given_ms=given_ms, fair_ms=fair_ms)


@pytest.mark.parametrize("outcome", ["timeout", "error"])
@pytest.mark.parametrize(("given_ms", "fair_ms"), WAITS)
def test_a_call_never_sent_never_counts(outcome: str, given_ms: int, fair_ms: int) -> None:
    assert not judged(outcome, sent=False, given_ms=given_ms, fair_ms=fair_ms)


@pytest.mark.parametrize(("given_ms", "fair_ms", "counts"), [
    (100, 5000, False), (4999, 5000, False), (5000, 5000, True), (15000, 5000, True),
    (2000, 1000, True)])
def test_a_timeout_counts_only_after_the_usual_wait(given_ms: int, fair_ms: int,
                                                    counts: bool) -> None:
    assert judged("timeout", sent=True, given_ms=given_ms, fair_ms=fair_ms) is counts
    assert judged("error", sent=True, given_ms=given_ms, fair_ms=fair_ms)  # whatever the wait


def test_an_unjudged_probe_lets_the_next_lookup_probe() -> None:
    breakers = Breakers(SharedState(None), POLICY)
    fail(breakers, "x", 3)
    time.sleep(POLICY.cooldown_s + 0.2)
    probe = breakers.admit(["x"])["x"]
    assert probe.state == PROBE
    assert breakers.admit(["x"])["x"].state == OPEN  # the probe is out
    breakers.record("x", "timeout", probe, counted=False)  # cut short by its lookup
    assert breakers.admit(["x"])["x"].state == PROBE  # no verdict: another may probe
    for _ in range(POLICY.failures + 1):  # never counted, however many
        breakers.record("z", "timeout", breakers.admit(["z"])["z"], counted=False)
    assert breakers.admit(["z"])["z"] == Ticket(CLOSED, 0)


def fail(breakers: Breakers, endpoint: str, times: int) -> None:
    for _ in range(times):
        ticket = breakers.admit([endpoint])[endpoint]
        breakers.record(endpoint, "error", ticket)


def cycle(a: Breakers, b: Breakers) -> None:
    """``a`` and ``b`` share state: what one records, the other obeys."""
    assert a.admit(["x"])["x"].state == CLOSED
    fail(a, "x", 2)
    assert b.admit(["x"])["x"] == Ticket(CLOSED, 2)
    fail(b, "x", 1)
    assert a.admit(["x"])["x"].state == OPEN
    assert not b.admit(["x"])["x"].allowed
    assert a.admit(["y"])["y"].state == CLOSED  # breakers are per endpoint
    time.sleep(POLICY.cooldown_s + 0.2)
    probe = a.admit(["x"])["x"]
    assert probe.state == PROBE
    assert b.admit(["x"])["x"].state == OPEN  # one probe across processes
    a.record("x", "error", probe)  # the probe failed: open again
    assert b.admit(["x"])["x"].state == OPEN
    time.sleep(POLICY.cooldown_s + 0.2)
    probe = b.admit(["x"])["x"]
    assert probe.state == PROBE
    b.record("x", "no_match", probe)  # the probe answered: closed
    assert a.admit(["x"])["x"] == Ticket(CLOSED, 0)


def test_in_process_breaker_opens_probes_and_closes() -> None:
    state = SharedState(None)
    cycle(Breakers(state, POLICY), Breakers(state, POLICY))


def test_a_success_resets_the_count_of_failures() -> None:
    breakers = Breakers(SharedState(None), POLICY)
    fail(breakers, "x", 2)
    breakers.record("x", "declined", breakers.admit(["x"])["x"])
    fail(breakers, "x", 2)
    assert breakers.admit(["x"])["x"] == Ticket(CLOSED, 2)


def test_two_broker_processes_share_one_breaker_through_redis(
        redis_url: str, redis_prefix: str) -> None:
    one, two = SharedState(redis_url, redis_prefix), SharedState(redis_url, redis_prefix)
    cycle(Breakers(one, POLICY), Breakers(two, POLICY))


def test_unreachable_redis_refuses_admission_but_recording_never_raises() -> None:
    down = SharedState("redis://127.0.0.1:1/0")
    breakers = Breakers(down, POLICY)
    with pytest.raises(StateUnavailable):
        breakers.admit(["x"])
    breakers.record("x", "error", Ticket(CLOSED, 0))  # logged, not raised
    assert down.ping() is False
