"""The soak's Redis restarts: how soon lookups work again once Redis answers.

For each restart (Redis stopped at ``down_s``, answering PING again at
``back_s``, seconds from the start of the run), from the lookups the clients
sent (when sent, when answered, the status):

- ``recovered_s``: from Redis answering to the answer of the first lookup sent
  after that which succeeded (200); None if none did before the next restart;
- ``refused_after_back``: lookups refused (503) with the answer coming after Redis
  answered (a lookup sent while Redis was down but refused after it came back
  counts here: it was refused although Redis was there), until the next restart;
  ``last_refused_s``: the last of them, from Redis answering;
- ``refused_while_down``: lookups refused while Redis was down (expected).

Pure functions (``soak.py`` records the times; ``tests/unit/test_soak_redis.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

REFUSED = "503"


@dataclass(frozen=True)
class Answer:
    sent_s: float
    answered_s: float
    status: str


@dataclass(frozen=True)
class Restart:
    down_s: float
    back_s: float


def recovery(restarts: Sequence[Restart], answers: Sequence[Answer]) -> list[dict[str, Any]]:
    """One row per restart, in order (see the module's docstring)."""
    ordered = sorted(restarts, key=lambda r: r.down_s)
    rows = []
    for i, restart in enumerate(ordered):
        until = ordered[i + 1].down_s if i + 1 < len(ordered) else float("inf")
        after = [a for a in answers if restart.back_s <= a.answered_s < until]
        firsts = [a.answered_s for a in after
                  if a.status == "200" and a.sent_s >= restart.back_s]
        refused = [a.answered_s for a in after if a.status == REFUSED]
        rows.append({
            "down_s": round(restart.down_s, 2),
            "down_for_s": round(restart.back_s - restart.down_s, 2),
            "recovered_s": round(min(firsts) - restart.back_s, 3) if firsts else None,
            "refused_after_back": len(refused),
            "last_refused_s": round(max(refused) - restart.back_s, 3) if refused else None,
            "refused_while_down": sum(
                a.status == REFUSED and restart.down_s <= a.answered_s < restart.back_s
                for a in answers),
        })
    return rows


def summary(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The worst restart: slowest recovery, most refusals after Redis answered."""
    recovered = [r["recovered_s"] for r in rows]
    return {
        "restarts": len(rows),
        "never_recovered": sum(r is None for r in recovered),
        "worst_recovered_s": max((r for r in recovered if r is not None), default=None),
        "refused_after_back_total": sum(r["refused_after_back"] for r in rows),
        "refused_after_back_worst": max((r["refused_after_back"] for r in rows), default=0),
    }


def table(rows: Sequence[dict[str, Any]]) -> list[str]:
    """The per-restart lines of the soak's report."""
    if not rows:
        return []
    lines = ["  Redis restarts: down at (s), down for (s), first lookup working again (s "
             "after Redis answered), refused after Redis answered (last at, s)"]
    for r in rows:
        recovered = "never" if r["recovered_s"] is None else f"{r['recovered_s']:.2f}"
        last = "" if r["last_refused_s"] is None else f" (last at {r['last_refused_s']:.2f})"
        lines.append(f"    {r['down_s']:>7.1f}  {r['down_for_s']:>5.2f}  {recovered:>6}  "
                     f"{r['refused_after_back']}{last}")
    return lines
