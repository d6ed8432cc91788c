"""Who a lookup's trail records say was asked: sent the question, so the child's
identity. Pure functions over the records.

``lookup.requested`` lists in ``authorities`` those asked and in ``not_asked``
those routed but not sent it (suspended, circuit open), each with the reason;
``lookup.completed`` marks a not-asked authority's outcome with ``not_asked``.
Records from before ``not_asked`` was kept listed everyone in ``authorities``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def not_asked(requested: Mapping[str, Any], completed: Mapping[str, Any] | None = None
              ) -> dict[str, str]:
    """The authorities the lookup did not ask, each with the reason."""
    found = {n["id"]: str(n.get("reason")) for n in requested.get("not_asked") or []
             if isinstance(n, Mapping) and isinstance(n.get("id"), str)}
    for o in outcomes_of(completed):
        if o.get("not_asked"):
            found.setdefault(o["id"], str(o["not_asked"]))
    return found


def asked(requested: Mapping[str, Any], completed: Mapping[str, Any] | None = None
          ) -> list[str]:
    """The authorities the lookup asked, in the order recorded."""
    skip = not_asked(requested, completed)
    return [a for a in requested.get("authorities") or [] if isinstance(a, str)
            and a not in skip]


def outcomes_of(completed: Mapping[str, Any] | None) -> list[Mapping[str, Any]]:
    """``lookup.completed``'s outcomes that name an authority."""
    return [o for o in (completed or {}).get("outcomes") or []
            if isinstance(o, Mapping) and isinstance(o.get("id"), str)]


def asked_outcomes(requested: Mapping[str, Any], completed: Mapping[str, Any] | None
                   ) -> dict[str, Any]:
    """Each asked authority's outcome from ``lookup.completed`` (id: outcome)."""
    skip = not_asked(requested, completed)
    return {o["id"]: o.get("outcome") for o in outcomes_of(completed) if o["id"] not in skip}
