"""The synthetic world's data: authorities, children, involvements.

All people are fictional. NHS numbers are in the 999 test range, phone
numbers in Ofcom's ranges reserved for drama, e-mail addresses under
``example.gov.uk`` / ``example.nhs.uk``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

#: The date the synthetic world is "as of". Fixed, so the world does not
#: change with the clock; involvements ending before it are past.
REFERENCE_DATE = date(2026, 11, 1)

BEHAVIOURS = ("normal", "slow", "down")
#: How late the demo's slow authority answers. Inside its endpoint's time limit
#: (``files.ENDPOINT_TIMEOUT_MS``, 3 s) and the default deadline (5 s), so the
#: practitioner sees it arrive late ("5 of 6 authorities have answered", then the
#: sixth); a lookup with a shorter deadline (``"deadline_ms": 1000``) misses it, and
#: asking again with the usual deadline gets its answer (issue 22). At 3.5 s, beyond
#: the time limit, it could never answer, so asking again could never be shown working.
SLOW_DELAY_MS = 2000



@dataclass
class Authority:
    id: str
    name: str
    code: str
    coverage: list[str]
    behaviour: str  # "normal" | "slow" | "down"
    organisation: str = ""
    contact: str = ""
    districts: list[str] = field(default_factory=list)

    @property
    def national(self) -> bool:
        return self.coverage == ["national"]

    @property
    def simulate_delay_ms(self) -> int:
        return SLOW_DELAY_MS if self.behaviour == "slow" else 0


@dataclass
class Child:
    child_ref: str
    nhs_number: str
    given_name: str
    family_name: str
    date_of_birth: date
    postcodes: list[str]
    known_to: list[str]
    shielded: bool
    notes: str
    home_authority: str = ""

    def identity(self) -> dict:
        """The child as a lookup request's ``child`` object."""
        return {
            "nhs_number": self.nhs_number,
            "given_name": self.given_name,
            "family_name": self.family_name,
            "date_of_birth": self.date_of_birth.isoformat(),
            "postcodes": list(self.postcodes),
        }


@dataclass
class Involvement:
    """One professional's involvement with one child, as held by one authority.

    ``professional_name`` is empty when the authority knows the child but has
    no named worker. ``to`` is ``None`` while the involvement is current.
    """

    child_ref: str
    authority_id: str
    professional_name: str
    role: str
    service: str
    sensitive: bool
    organisation: str
    team: str
    phone: str
    email: str
    registration_number: str
    from_: date | None
    to: date | None

    @property
    def current(self) -> bool:
        return self.to is None


@dataclass
class World:
    seed: int
    authorities: list[Authority]
    children: list[Child]
    involvements: list[Involvement]

    # -- look-ups ---------------------------------------------------------

    def authority(self, authority_id: str) -> Authority:
        for a in self.authorities:
            if a.id == authority_id:
                return a
        raise KeyError(authority_id)

    def child(self, child_ref: str) -> Child:
        for c in self.children:
            if c.child_ref == child_ref:
                return c
        raise KeyError(child_ref)

    def involvements_for(self, child_ref: str, authority_id: str | None = None
                         ) -> list[Involvement]:
        return [
            i for i in self.involvements
            if i.child_ref == child_ref and (authority_id is None or i.authority_id == authority_id)
        ]

    def involvements_at(self, authority_id: str) -> list[Involvement]:
        return [i for i in self.involvements if i.authority_id == authority_id]

    # -- for people -------------------------------------------------------

    def label(self, child: Child) -> str:
        """Why a child is interesting to look up, in a few words."""
        invs = self.involvements_for(child.child_ref)
        if child.shielded:
            return f"shielded at {child.known_to[0]}: a notice, no professionals"
        if any(i.sensitive for i in invs):
            return "has a sensitive service (shown only with a basis that covers it)"
        if not child.known_to:
            return "known to nobody"
        behaviours = {self.authority(a).behaviour for a in child.known_to}
        shared = _shared_professionals(invs)
        parts = []
        if len(child.known_to) > 1:
            parts.append(f"known to {len(child.known_to)} authorities")
        if shared:
            parts.append("one professional reported by two authorities")
        if any(i.to is not None for i in invs):
            parts.append("past involvement")
        if "slow" in behaviours:
            parts.append("one authority is slow")
        if "down" in behaviours:
            parts.append("one authority is down")
        if not [i for i in invs if i.professional_name]:
            parts.append("known, no named worker")
        return ", ".join(parts) or f"known to {child.known_to[0]}"

    def children_for_display(self, n: int = 5) -> list[Child]:
        """A few children worth looking up in the demo, most telling first:
        multi-authority (with a shared professional), past involvement,
        shielded, sensitive, unknown; then others known to several authorities."""
        picked: list[Child] = []

        def pick(pred) -> None:
            for c in self.children:
                if c not in picked and pred(c):
                    picked.append(c)
                    return

        def healthy(c: Child) -> bool:
            return all(self.authority(a).behaviour == "normal" for a in c.known_to)

        def invs(c: Child) -> list[Involvement]:
            return self.involvements_for(c.child_ref)

        pick(lambda c: len(c.known_to) > 1 and _shared_professionals(invs(c)) and healthy(c)
             and not c.shielded and not any(i.sensitive for i in invs(c)))
        pick(lambda c: any(i.to is not None for i in invs(c)) and len(c.known_to) > 1
             and not c.shielded and not any(i.sensitive for i in invs(c)))
        pick(lambda c: c.shielded)
        pick(lambda c: any(i.sensitive for i in invs(c)))
        pick(lambda c: not c.known_to)
        pick(lambda c: any(self.authority(a).behaviour != "normal" for a in c.known_to))
        for c in self.children:
            if len(c.known_to) > 1:
                pick(lambda x, c=c: x is c)
        for c in self.children:
            pick(lambda x, c=c: x is c)
        return picked[:n]

    def children_summary(self) -> list[dict]:
        """The children as plain data (for ``federator demo children --json``)."""
        return [
            {
                "child_ref": c.child_ref,
                **c.identity(),
                "known_to": list(c.known_to),
                "shielded": c.shielded,
                "notes": c.notes,
            }
            for c in self.children
        ]


def _shared_professionals(invs: list[Involvement]) -> bool:
    seen: dict[str, str] = {}
    for i in invs:
        if not i.registration_number:
            continue
        other = seen.setdefault(i.registration_number, i.authority_id)
        if other != i.authority_id:
            return True
    return False
