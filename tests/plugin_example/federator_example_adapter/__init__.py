"""An example adapter kind: a register of children held in memory.

It shows the whole contract of a plug-in: an entry point in the group
``federator.adapters`` naming a class with ``from_context(context)`` and
``lookup(target, payload, *, deadline)`` that answers like a
``federator-lookup/1`` adapter.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from adapters.base import AdapterTimeout, Target

PROTOCOL = "example-register/1"

REGISTER = {
    "9990001014": [{"name": "Ada Example", "role": "Youth worker", "service": "youth service",
                    "organisation": "Example Youth Service", "team": None,
                    "phone": "01632 960100", "email": None, "current": True,
                    "from": "2025-01-01", "to": None}],
}


class RegisterClient:
    protocol = PROTOCOL

    def __init__(self, user_agent: str) -> None:
        self.user_agent = user_agent

    @classmethod
    def from_context(cls, context: Any) -> RegisterClient:
        return cls(context.user_agent)

    def lookup(self, target: Target, payload: Mapping[str, Any], *,
               deadline: float) -> dict[str, Any]:
        if time.monotonic() >= deadline:
            raise AdapterTimeout("no time left")
        people = REGISTER.get(str(payload["child"].get("nhs_number") or ""), [])
        return {"lookup_id": payload["lookup_id"], "status": "match" if people else "no_match",
                "confidence": 1.0 if people else 0.0, "professionals": people, "notice": None}
