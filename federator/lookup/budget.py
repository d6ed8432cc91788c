"""One lookup budget per person, whatever route the lookup comes by.

Every lookup sent to authorities (the API, the form, either of them streamed, a
retry) is spent from the practitioner's budget (``FEDERATOR_LOOKUPS_PER_MINUTE``
and ``_PER_DAY``) and from their organisation's ceiling
(``FEDERATOR_ORGANISATION_LOOKUPS_PER_MINUTE`` and ``_PER_DAY``), in the lookup
service, just before ``lookup.requested`` is written: a route cannot forget it.
A refused lookup (bad input, a policy, a retry refused) is spent from a
separate, higher budget (``FEDERATOR_REFUSED_LOOKUPS_PER_MINUTE`` and
``_PER_DAY``) before its ``lookup.refused`` is written.

Beyond a budget the attempt is answered 429 (``OverBudget``). Such an attempt
sends nothing to anyone, so it is not a lookup; the trail keeps the fact
(``lookup.rate_limited``, flagged ``budget_reached``) once per limit and window,
not once per attempt: a script hammering the broker cannot fill the trail.

Counting is a moving window (the ``limits`` library: in Redis, one atomic script
per check, shared by every broker process; in-process without Redis). A budget
is checked practitioner first, organisation last, so one person beyond their own
budget never spends their colleagues' ceiling.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

import redis
from limits import RateLimitItem, RateLimitItemPerDay, RateLimitItemPerMinute
from limits.errors import StorageError
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

from federator.auth.principal import Principal
from federator.lookup.budget_redis import one_trip_spender
from federator.state import SharedState, StateUnavailable, client_options

#: What a limit counts: a practitioner's lookups sent, their organisation's, or
#: a practitioner's refused lookups.
PRACTITIONER = "practitioner"
ORGANISATION = "organisation"
REFUSED = "refused"


@dataclass(frozen=True)
class BudgetPolicy:
    per_minute: int = 10
    per_day: int = 200
    refused_per_minute: int = 30
    refused_per_day: int = 300
    organisation_per_minute: int = 300
    organisation_per_day: int = 10000


@dataclass(frozen=True)
class Limit:
    """One limit on one counter: ``scope`` (what it counts), ``who`` (whose)."""

    scope: str
    who: str
    item: RateLimitItem

    @property
    def window_s(self) -> int:
        return int(self.item.get_expiry())

    @property
    def text(self) -> str:
        return describe(self.item)

    @property
    def key(self) -> str:
        return f"{self.scope}:{self.who}:{self.window_s}"


def describe(item: RateLimitItem) -> str:
    """'10 per minute', '200 per day'."""
    unit = "minute" if isinstance(item, RateLimitItemPerMinute) else "day"
    return f"{item.amount} per {unit}"


def sent_limits(principal: Principal, policy: BudgetPolicy) -> tuple[Limit, ...]:
    """The limits a lookup about to be sent spends from, in the order they are
    checked: the practitioner's (minute, then day), then their organisation's. Those
    whose organisation is not known (no claim, or roles at several organisations)
    share one organisation's ceiling between them, rather than none."""
    organisation = principal.organisation or ""
    return (Limit(PRACTITIONER, principal.id, RateLimitItemPerMinute(policy.per_minute)),
            Limit(PRACTITIONER, principal.id, RateLimitItemPerDay(policy.per_day)),
            Limit(ORGANISATION, organisation,
                  RateLimitItemPerMinute(policy.organisation_per_minute)),
            Limit(ORGANISATION, organisation,
                  RateLimitItemPerDay(policy.organisation_per_day)))


def refused_limits(principal: Principal, policy: BudgetPolicy) -> tuple[Limit, ...]:
    return (Limit(REFUSED, principal.id, RateLimitItemPerMinute(policy.refused_per_minute)),
            Limit(REFUSED, principal.id, RateLimitItemPerDay(policy.refused_per_day)))


def message(limit: Limit, retry_after: int) -> str:
    """What the practitioner is told (no names, nothing of the child)."""
    if limit.scope == ORGANISATION and not limit.who:
        what = (f"Lookups by people whose organisation is not known (it is not in their "
                f"sign-in, or they hold roles at several) share one limit of {limit.text}, "
                f"and it has been reached.")
    elif limit.scope == ORGANISATION:
        what = (f"Your organisation has sent too many lookups in a short time (its limit "
                f"is {limit.text}).")
    elif limit.scope == REFUSED:
        what = (f"You have made too many lookups that could not be accepted (the limit is "
                f"{limit.text}).")
    else:
        what = (f"You have asked for too many lookups in a short time (the limit is "
                f"{limit.text}, counted over every way of asking).")
    return f"{what} Try again in {retry_after} seconds."


class OverBudget(Exception):
    """An attempt beyond a budget: answered 429, nothing sent. ``first`` when it is
    the first such attempt in this limit's window (the one the trail records)."""

    def __init__(self, limit: Limit, retry_after: int, *, first: bool) -> None:
        super().__init__(message(limit, retry_after))
        self.limit = limit
        self.retry_after = retry_after
        self.first = first

    def body(self) -> dict[str, object]:
        """The API's 429 body (docs/protocol.md)."""
        return {"code": 429, "status": "Too Many Requests", "message": str(self),
                "scope": self.limit.scope, "limit": self.limit.text,
                "retry_after": self.retry_after}


def retry_after_s(reset_at: float, now: float) -> int:
    """Whole seconds until the window lets one more through: at least 1."""
    return max(1, math.ceil(reset_at - now))


class LookupBudget:
    """The counters, in Redis (``redis_url``) or in this process."""

    def __init__(self, policy: BudgetPolicy, state: SharedState, *,
                 redis_url: str | None = None, prefix: str = "federator:") -> None:
        self.policy = policy
        self.state = state
        options: dict[str, object] = ({**client_options(), "key_prefix": f"{prefix}budget"}
                                      if redis_url else {})
        storage = storage_from_string(redis_url or "memory://", **options)
        self.window = MovingWindowRateLimiter(storage)
        #: in Redis, every limit of one attempt checked and spent in one round trip
        self.one_trip = one_trip_spender(storage)

    def spend(self, principal: Principal) -> None:
        """One lookup about to be sent. Raises ``OverBudget`` or ``StateUnavailable``."""
        self._take(sent_limits(principal, self.policy))

    def spend_refused(self, principal: Principal) -> None:
        """One refused lookup about to be recorded. Raises ``OverBudget`` or
        ``StateUnavailable``."""
        self._take(refused_limits(principal, self.policy))

    def forget_noted(self, limit: Limit) -> None:
        """The trail could not record the refusal: let the next attempt try again."""
        self.state.delete(_noted(limit))

    def _take(self, limits: Sequence[Limit]) -> None:
        try:
            refused = self._first_refused(limits)
            if refused is not None:
                limit = limits[refused]
                reset_at, _ = self.window.get_window_stats(limit.item, limit.scope,
                                                           limit.who)
                first = self.state.put(_noted(limit), "1", limit.window_s,
                                       only_if_absent=True)
                raise OverBudget(limit, retry_after_s(reset_at, time.time()), first=first)
        except (redis.RedisError, StorageError) as e:
            raise StateUnavailable("shared state unavailable") from e

    def _first_refused(self, limits: Sequence[Limit]) -> int | None:
        """Spend from each limit in order until one has no room: its index, or None
        when every one had room (and was spent)."""
        if self.one_trip is not None:
            return self.one_trip.spend([(limit.item, limit.scope, limit.who)
                                        for limit in limits])
        for i, limit in enumerate(limits):
            if not self.window.hit(limit.item, limit.scope, limit.who):
                return i
        return None


def _noted(limit: Limit) -> str:
    return f"budget-noted:{limit.key}"
