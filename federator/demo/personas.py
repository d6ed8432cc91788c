"""The development identity provider's people. All fictional.

Every persona signs in with the password ``demo``. ``authority-admin:<id>``
works for any authority id; the organisation comes from the names the
identity provider was given, else from the id.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

DEMO_PASSWORD = "demo"  # noqa: S105 - the demo's published password, not a secret
ROLES = ("practitioner", "auditor", "broker-admin", "authority-admin")
AUTHORITY_ADMIN_PREFIX = "authority-admin:"
_AUTHORITY_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")


@dataclass(frozen=True)
class Persona:
    username: str
    sub: str
    name: str
    email: str
    role: str  # one of ROLES
    organisation: str
    job_title: str
    authority: str | None = None

    def claims(self) -> dict:
        """The identity claims an access or ID token carries for this persona."""
        out = {
            "sub": self.sub,
            "name": self.name,
            "email": self.email,
            "roles": [self.role],
            "organisation": self.organisation,
            "job_title": self.job_title,
        }
        if self.authority:
            out["authority"] = self.authority
        return out


PERSONAS: dict[str, Persona] = {
    p.username: p
    for p in (
        Persona("practitioner", "demo-practitioner-1", "Priya Shah",
                "priya.shah@example.gov.uk", "practitioner", "Leeds City Council",
                "Social worker"),
        Persona("practitioner-2", "demo-practitioner-2", "Tom Whitaker",
                "tom.whitaker@example.nhs.uk", "practitioner",
                "Yorkshire Community Health NHS Trust", "Health visitor"),
        Persona("auditor", "demo-auditor-1", "Helen Ashworth",
                "helen.ashworth@example.gov.uk", "auditor", "Leeds City Council",
                "Information governance auditor"),
        Persona("broker-admin", "demo-broker-admin-1", "Dev Mistry",
                "dev.mistry@example.gov.uk", "broker-admin", "Federator Demo Service",
                "Service administrator"),
    )
}


def authority_admin(authority_id: str, organisation: str | None = None) -> Persona:
    """The administrator persona of one authority."""
    if not _AUTHORITY_ID.match(authority_id):
        raise KeyError(f"not an authority id: {authority_id!r}")
    return Persona(
        username=f"{AUTHORITY_ADMIN_PREFIX}{authority_id}",
        sub=f"demo-authority-admin-{authority_id}",
        name="Jordan Lee",
        email=f"jordan.lee+{authority_id}@example.gov.uk",
        role="authority-admin",
        organisation=organisation or authority_id,
        job_title="Systems administrator",
        authority=authority_id,
    )


def find_persona(username: str, personas: Mapping[str, Persona] | None = None,
                 authorities: Mapping[str, str] | None = None) -> Persona | None:
    """The persona for a username, or None. ``authorities`` maps authority id
    to organisation name, for ``authority-admin:<id>``."""
    table = PERSONAS if personas is None else personas
    if username in table:
        return table[username]
    if username.startswith(AUTHORITY_ADMIN_PREFIX):
        authority_id = username[len(AUTHORITY_ADMIN_PREFIX):]
        try:
            return authority_admin(authority_id, (authorities or {}).get(authority_id))
        except KeyError:
            return None
    return None


__all__ = ["DEMO_PASSWORD", "PERSONAS", "ROLES", "Persona", "authority_admin", "find_persona"]
