"""Spending a lookup's limits in Redis in one round trip.

``limits`` checks a moving window with one Lua script per limit, so a lookup
spending the practitioner's minute and day and the organisation's minute and
day made four round trips to Redis before anything else could happen (about
0.3 ms each on loopback, more under load, ``benchmarks/fanout.py``). This
script does what those four calls did, in the same order, in one atomic call:
each limit is checked and, if it has room, spent, and the first one without
room stops it (the limits after it are neither checked nor spent, so a
practitioner beyond their own budget never spends their organisation's).

The lists it writes are those of ``limits``' own moving window (the same keys,
the same entries: its ``acquire_moving_window.lua`` for one entry), so
``MovingWindowRateLimiter.get_window_stats`` and ``test`` read them as before,
and both ways of spending can share one Redis during a rolling upgrade.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from limits import RateLimitItem
from limits.storage import RedisClusterStorage, RedisStorage

#: KEYS: each limit's list, in the order they are checked. ARGV: the time, then
#: each limit's size and window (seconds). Returns 0 when every limit had room
#: (each spent), else the 1-based index of the first that had none.
SPEND_IN_ORDER = """
local timestamp = tonumber(ARGV[1])
for i, key in ipairs(KEYS) do
    local limit = tonumber(ARGV[2 * i])
    local expiry = tonumber(ARGV[2 * i + 1])
    if limit < 1 then
        return i
    end
    local entry = redis.call('lindex', key, limit - 1)
    if entry and tonumber(entry) >= timestamp - expiry then
        return i
    end
    redis.call('lpush', key, timestamp)
    redis.call('ltrim', key, 0, limit - 1)
    redis.call('expire', key, expiry)
end
return 0
"""


class OneTripSpender:
    """Spends a sequence of moving-window limits in ``storage`` (``limits``'
    Redis storage) with one script call."""

    def __init__(self, storage: RedisStorage) -> None:
        self.storage = storage
        self.script = storage.get_connection().register_script(SPEND_IN_ORDER)

    def spend(self, items: Sequence[tuple[RateLimitItem, str, str]],
              now: float | None = None) -> int | None:
        """Spend one entry of each ``(item, scope, who)`` in order; the index of
        the first without room (those before it are spent), or None when all had
        room. Raises ``redis.RedisError``."""
        keys: list[str] = []
        args: list[Any] = [time.time() if now is None else now]
        for item, *identifiers in items:
            keys.append(self.storage.prefixed_key(item.key_for(*identifiers)))
            args += [item.amount, item.get_expiry()]
        refused = int(self.script(keys=keys, args=args))
        return refused - 1 if refused else None


def one_trip_spender(storage: Any) -> OneTripSpender | None:
    """The one-trip spender for a Redis storage; None for any other: in-process
    counting has no round trips to save, and in a Redis Cluster one script may not
    touch keys of several slots (``limits`` then spends limit by limit)."""
    if isinstance(storage, RedisStorage) and not isinstance(storage, RedisClusterStorage):
        return OneTripSpender(storage)
    return None
