"""Who is asking: the signed-in person or the bearer token's subject, as the
access rules, the audit trail and the lookup service see them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Principal:
    id: str
    name: str
    roles: tuple[str, ...]
    organisation: str
    job_title: str = ""
    authority: str | None = None
    #: From the token's ``email`` claim: the contact the child's worker is given.
    email: str = ""
    #: The token's ``family_name`` claim (the own-family-name audit flag).
    family_name: str = ""

    def actor(self, role: str) -> dict[str, Any]:
        return {"actor_id": self.id, "actor_role": role,
                "actor_organisation": self.organisation}
