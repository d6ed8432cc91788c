"""Circuit breakers per endpoint, shared by every broker process through
``SharedState`` (Redis; in-process without it).

Not pybreaker: its ``CircuitBreaker.call`` holds one lock for the whole
outbound call, so concurrent lookups to one authority would queue behind each
other, and its Redis state neither expires a failure count nor limits the
half-open state to one probe across processes. This is the small breaker
LIBRARY-NOTES describes:

- ``fails`` counts consecutive failures (``INCR`` + ``EXPIRE window``); a success
  deletes it;
- at ``failures`` it sets ``open`` for ``cooldown_s`` and ``tripped`` (longer);
- while ``open`` exists the endpoint is ``unavailable`` and not called;
- once ``open`` has expired but ``tripped`` remains, one caller across all
  processes wins ``probe`` (``SET NX EX``) and calls; success closes the breaker,
  failure opens it again for another cool-down.

One ``MGET`` per lookup reads every asked endpoint's state; writes happen only
on failure or on the first success after one.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from federator import metrics
from federator.names import FAILURES, TIMEOUT
from federator.state import SharedState, StateUnavailable

log = logging.getLogger(__name__)


CLOSED, OPEN, PROBE = "closed", "open", "probe"


@dataclass(frozen=True)
class BreakerPolicy:
    failures: int = 5
    window_s: int = 60
    cooldown_s: int = 30
    probe_s: int = 20


@dataclass(frozen=True)
class Ticket:
    """What the breaker said about one endpoint for one lookup."""

    state: str
    failures: int = 0

    @property
    def allowed(self) -> bool:
        return self.state != OPEN


def decide(is_open: bool, tripped: bool) -> str:
    """The state read from the two flags: open, half-open (a probe may go), closed."""
    if is_open:
        return OPEN
    return PROBE if tripped else CLOSED


def counts_as_failure(outcome: str) -> bool:
    return outcome in FAILURES


def judged(outcome: str, *, sent: bool, given_ms: int, fair_ms: int) -> bool:
    """Whether a call's outcome says anything about the authority, for its breaker.

    An answer always does. A call that never left the broker (it was busy) says
    nothing, nor does a timeout when the lookup gave the call less than
    ``fair_ms`` (the endpoint's own timeout, or the broker's default deadline if
    shorter): a practitioner who asks for a 200 ms answer must not open a healthy
    authority's breaker for everyone."""
    if outcome not in FAILURES:
        return True
    if not sent:
        return False
    return outcome != TIMEOUT or given_ms >= fair_ms


def _keys(endpoint_id: str) -> tuple[str, str, str, str]:
    base = f"breaker:{endpoint_id}:"
    return base + "open", base + "tripped", base + "fails", base + "probe"


class Breakers:
    def __init__(self, state: SharedState, policy: BreakerPolicy | None = None) -> None:
        self.state = state
        self.policy = policy or BreakerPolicy()

    def admit(self, endpoint_ids: Sequence[str]) -> dict[str, Ticket]:
        """Each endpoint's ticket for this lookup. Raises ``StateUnavailable``."""
        wanted = [k for e in endpoint_ids for k in _keys(e)[:3]]
        values = self.state.get_many(wanted)
        tickets: dict[str, Ticket] = {}
        for i, endpoint_id in enumerate(endpoint_ids):
            is_open, tripped, fails = values[3 * i: 3 * i + 3]
            state = decide(is_open is not None, tripped is not None)
            if state == PROBE and not self.state.put(
                    _keys(endpoint_id)[3], "1", self.policy.probe_s, only_if_absent=True):
                state = OPEN  # another lookup is probing it now
            tickets[endpoint_id] = Ticket(state, int(fails) if fails else 0)
            metrics.breaker(endpoint_id, state)
        return tickets

    def peek(self, endpoint_id: str) -> str | None:
        """The breaker's state now, for pages: no probe is claimed. None when the
        shared state cannot be read."""
        try:
            is_open, tripped = self.state.get_many(list(_keys(endpoint_id)[:2]))
        except StateUnavailable:
            return None
        return decide(is_open is not None, tripped is not None)

    def record(self, endpoint_id: str, outcome: str, ticket: Ticket, *,
               counted: bool = True) -> None:
        """Count one call's outcome; not when it says nothing of the authority
        (``counted=judged(...)``). Redis errors are logged, not raised: the lookup
        has already gone out and its answer must still be given."""
        try:
            if counted:
                self._record(endpoint_id, outcome, ticket)
            elif ticket.state == PROBE:  # no verdict: the next lookup may probe
                self.state.delete(_keys(endpoint_id)[3])
        except StateUnavailable:
            log.warning("circuit breaker state not recorded: shared state unavailable",
                        extra={"authority": endpoint_id})

    def _record(self, endpoint_id: str, outcome: str, ticket: Ticket) -> None:
        _open, tripped, fails, probe = _keys(endpoint_id)
        p = self.policy
        if not counts_as_failure(outcome):
            if ticket.state == PROBE or ticket.failures:
                self.state.delete(fails, tripped, probe)
            return
        if ticket.state == PROBE:
            self._open(endpoint_id)
            return
        if self.state.incr(fails, p.window_s) >= p.failures:
            self._open(endpoint_id)

    def _open(self, endpoint_id: str) -> None:
        is_open, tripped, _fails, probe = _keys(endpoint_id)
        p = self.policy
        self.state.put(is_open, "1", p.cooldown_s)
        self.state.put(tripped, "1", p.cooldown_s + max(p.window_s, 10 * p.cooldown_s))
        self.state.delete(probe)
        log.warning("circuit opened", extra={"authority": endpoint_id})
        metrics.breaker(endpoint_id, OPEN)
