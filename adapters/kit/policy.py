"""The authority's local policy over a matched child (pure functions).

- Sensitive services (sexual health, substance misuse, mental health) are
  shown only when the basis allows: consent that covers sensitive services,
  safeguarding, or a statutory power under section 47 or a court order
  (not section 17).
- A shielded child gets no professionals, only a notice with a route.
- Past involvements (ended before today) only when the requester asks for them.
- A child known here only through sensitive services the basis does not cover is
  ``unseen``: the kit answers as it does for a child it does not know (the
  involvement is never revealed otherwise, not even as "known, nobody listed"),
  and the withheld services' workers are told of the lookup instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from adapters.kit.sources import ChildRecord, Involvement

SENSITIVE_POWERS = frozenset({"children-act-1989-s47", "court-order"})
KNOWN_BASES = frozenset({"consent", "safeguarding", "statutory"})
DEFAULT_SHIELD_NOTICE = (
    "This child's details are protected. Contact {authority}'s front door, "
    "who will pass your request to the right person."
)


@dataclass(frozen=True)
class PolicyOutcome:
    status: str  # "match" or "declined"
    professionals: list[dict[str, Any]] = field(default_factory=list)
    notice: str | None = None
    #: sensitive involvements held back for want of a covering basis (their workers
    #: are told of the lookup)
    withheld: tuple[Involvement, ...] = ()
    #: the child is known here only through ``withheld``: answer as not known
    unseen: bool = False


def basis_allows_sensitive(basis: Mapping[str, Any]) -> bool:
    kind = basis.get("type")
    if kind == "consent":
        return basis.get("covers_sensitive_services") is True
    if kind == "safeguarding":
        return True
    if kind == "statutory":
        return basis.get("power") in SENSITIVE_POWERS
    return False


def is_current(involvement: Involvement, today: date) -> bool:
    return involvement.to is None or involvement.to >= today


def professional_fields(involvement: Involvement, today: date) -> dict[str, Any]:
    """An involvement as the wire's professional object."""
    return {
        "name": involvement.professional_name,
        "role": involvement.role,
        "service": involvement.service,
        "organisation": involvement.organisation,
        "team": involvement.team,
        "phone": involvement.phone,
        "email": involvement.email,
        "registration_number": involvement.registration_number,
        "current": is_current(involvement, today),
        "from": involvement.from_.isoformat() if involvement.from_ else None,
        "to": involvement.to.isoformat() if involvement.to else None,
    }


def apply_policy(
    record: ChildRecord,
    basis: Mapping[str, Any],
    *,
    include_past: bool,
    today: date,
    authority: str = "the authority",
) -> PolicyOutcome:
    if basis.get("type") not in KNOWN_BASES:
        return PolicyOutcome("declined", notice="The lawful basis given is not one we recognise.")
    if record.shielded:
        notice = record.shield_notice or DEFAULT_SHIELD_NOTICE.format(authority=authority)
        return PolicyOutcome("match", [], notice)
    sensitive_ok = basis_allows_sensitive(basis)
    visible = [inv for inv in record.involvements if sensitive_ok or not inv.sensitive]
    withheld = tuple(inv for inv in record.involvements if inv.sensitive and not sensitive_ok)
    shown = [inv for inv in visible if include_past or is_current(inv, today)]
    # Current first, then the most recent.
    shown.sort(key=lambda inv: (inv.to or date.max, inv.from_ or date.min), reverse=True)
    return PolicyOutcome("match", [professional_fields(inv, today) for inv in shown],
                         withheld=withheld, unseen=bool(withheld) and not visible)
