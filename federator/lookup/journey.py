"""One lookup's journey as plain values: the prepared lookup (built once, then
passed everywhere), the records the trail keeps of it, and the merged answer.

Pure functions and frozen values: no Flask, no I/O. The service
(:mod:`federator.lookup.service`) does the I/O around them.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from functools import cached_property
from typing import Any

from adapters.protocol import WirePayload
from federator.auth.principal import Principal
from federator.inputs import text_problems
from federator.lookup.breakers import Ticket
from federator.lookup.fanout import Outcome, unavailable
from federator.lookup.free_text import child_in_text, identity_of
from federator.lookup.merge import merge
from federator.lookup.routing import Endpoint, Route
from federator.names import ANSWERED, MATCH

#: Why a lookup was refused when Redis is configured and down (breakers and limits
#: cannot be enforced).
STATE_DOWN_REASON = "shared state unavailable"
SUSPENDED = "endpoint suspended"
CIRCUIT_OPEN = "circuit open: recent calls failed; tried again after a cool-down"
#: Why an authority routed for a lookup was not asked, as the trail records it
#: (``not_asked`` in ``lookup.requested``, and on its outcome in ``lookup.completed``).
NOT_ASKED_SUSPENDED = "suspended"
NOT_ASKED_CIRCUIT_OPEN = "circuit_open"
#: Free text copied into a refusal's record is cut to this length.
PURPOSE_KEPT = 500
#: The most professionals one answer lists (current first, then most recent): every
#: authority's answer is capped already (``FEDERATOR_MAX_PROFESSIONALS``), this
#: bounds their sum, and a page of them.
MAX_LISTED = 1000
LISTED_CUT = ("The authorities reported {count} professionals: only the first {limit} are "
              "listed (those working with the child now first, then the most recent). "
              "Contact the authorities for the rest.")


@dataclass(frozen=True)
class PreparedLookup:
    """Everything one lookup needs once it is checked, routed and admitted."""

    id: str
    principal: Principal
    role: str
    #: the child as sent to authorities (``wire_child``)
    child: Mapping[str, Any]
    pseudonym: str
    purpose: str
    #: the basis as sent and audited (dates as ISO text)
    basis: Mapping[str, Any]
    scope: str
    include_past: bool
    plan: Route
    deadline_ms: int
    #: ``time.monotonic()`` by which every authority must have answered
    deadline: float
    tickets: Mapping[str, Ticket]
    #: the lookup a retry finishes, and the authorities a retry (or the request's
    #: ``authorities``) narrowed the plan to
    follows: str | None = None
    only: frozenset[str] | None = None
    #: flags only the broker saw (``own_family_name``), each ``{"flag", "reason"}``
    flags: tuple[Mapping[str, str], ...] = ()
    #: why every registered authority is asked (``scope: "all"``)
    scope_reason: str | None = None
    #: areas asked beyond those the child's postcodes give (flagged ``areas_widened``)
    areas_added: tuple[str, ...] = ()

    @property
    def actor(self) -> dict[str, Any]:
        return self.principal.actor(self.role)

    @property
    def authorities(self) -> tuple[str, ...]:
        """Every authority this lookup reports on: asked, or unavailable without asking."""
        return tuple(e.id for e in (*self.plan.ask, *self.plan.unavailable))

    @cached_property
    def asked(self) -> dict[str, Endpoint]:
        """The authorities sent the question, by id: routed, and their breaker lets
        the call through (worked out once: every outcome looks its endpoint up)."""
        return {e.id: e for e in self.plan.ask if self.tickets[e.id].allowed}

    def not_asked(self) -> dict[str, str]:
        """The authorities not asked (never sent the child's identity), each with
        the reason the trail records."""
        return {**{e.id: NOT_ASKED_SUSPENDED for e in self.plan.unavailable},
                **{e.id: NOT_ASKED_CIRCUIT_OPEN for e in self.plan.ask
                   if not self.tickets[e.id].allowed}}

    def withheld(self) -> list[Outcome]:
        """The authorities not asked, each with the reason."""
        return ([unavailable(e, SUSPENDED) for e in self.plan.unavailable]
                + [unavailable(e, CIRCUIT_OPEN) for e in self.plan.ask
                   if not self.tickets[e.id].allowed])

    def payload(self) -> WirePayload:
        """The question every authority is sent (encoded once for all of them)."""
        p = self.principal
        return WirePayload({
            "lookup_id": self.id, "child": dict(self.child), "basis": dict(self.basis),
            "purpose": self.purpose,
            "requester": {"id": p.id, "name": p.name, "role": p.job_title,
                          "organisation": p.organisation,
                          **({"email": p.email} if p.email else {})},
            "include_past": self.include_past,
        })


def narrowed_to(request: Mapping[str, Any], only: Collection[str] | None
                ) -> frozenset[str] | None:
    """The authorities a lookup may ask: a retry's ``only``, the request's own
    ``authorities``, both (the intersection), or None (everyone routed)."""
    asked = request.get("authorities")
    if asked:
        return frozenset(asked) & frozenset(only if only is not None else asked)
    return frozenset(only) if only is not None else None


def narrow(plan: Route, only: Collection[str]) -> Route:
    """The routed plan, asking only the authorities named (never widening it)."""
    keep = set(only)
    return Route(ask=tuple(e for e in plan.ask if e.id in keep),
                 unavailable=tuple(e for e in plan.unavailable if e.id in keep),
                 areas=plan.areas)


# -- what the trail keeps --------------------------------------------------------------


def requested_fields(lookup: PreparedLookup) -> dict[str, Any]:
    """``lookup.requested``: the question, never the child (only its pseudonym).
    ``authorities`` are those asked (sent the question); ``not_asked`` those routed
    but not sent it, with the reason. The trail adds the flags it computes as it
    writes (``federator.audit.flags``)."""
    extra: dict[str, Any] = {}
    if lookup.follows:
        extra["follows"] = lookup.follows
    if lookup.only is not None:
        extra["only"] = sorted(lookup.only)
    if lookup.flags:
        extra["flags"] = list(lookup.flags)
    if lookup.scope_reason:
        extra["scope_reason"] = lookup.scope_reason
    if lookup.areas_added:
        extra["areas_added"] = list(lookup.areas_added)
    return {
        "lookup_id": lookup.id, **lookup.actor, "purpose": lookup.purpose,
        "basis_type": lookup.basis["type"], "basis": dict(lookup.basis),
        "child_pseudonym": lookup.pseudonym, "scope": lookup.scope,
        "areas": sorted(lookup.plan.areas), "include_past": lookup.include_past,
        "deadline_ms": lookup.deadline_ms, **extra,
        "authorities": list(lookup.asked),
        "not_asked": [{"id": a, "reason": why} for a, why in lookup.not_asked().items()],
    }


def completed_fields(lookup: PreparedLookup, outcomes: Sequence[Outcome],
                     answer: Mapping[str, Any], *, client_gone: bool) -> dict[str, Any]:
    """``lookup.completed``: each authority's outcome and how many professionals,
    never who they are. An authority not asked is marked so on its outcome."""
    not_asked = lookup.not_asked()
    return {
        "lookup_id": lookup.id, **lookup.actor, "child_pseudonym": lookup.pseudonym,
        **({"follows": lookup.follows} if lookup.follows else {}),
        "complete": answer["complete"], "client_gone": client_gone,
        "outcomes": [_outcome_kept(o, not_asked.get(o.id)) for o in outcomes],
        "professionals": len(answer["professionals"]),
    }


def _outcome_kept(o: Outcome, not_asked: str | None = None) -> dict[str, Any]:
    kept: dict[str, Any] = {"id": o.id, "outcome": o.status, "latency_ms": o.latency_ms,
                            "professionals": len(o.professionals)}
    if not_asked:
        kept["not_asked"] = not_asked
    if o.matched_on:
        kept["matched_on"] = list(o.matched_on)
    if o.record_ref:
        kept["record_ref"] = o.record_ref
    if o.dropped:
        kept["dropped"] = o.dropped
    if o.partial:
        kept["partial"] = list(o.partial)
    return kept


def refusal_fields(errors: Mapping[str, Any] | None, request: Any = None, *,
                   reason: str | None = None, follows: str | None = None) -> dict[str, Any]:
    """``lookup.refused``, one shape wherever the refusal happens: which fields
    failed (never their values), why, and the purpose and basis type when they
    are text that may be stored."""
    fields: dict[str, Any] = {"fields": sorted(_paths(errors or {}))}
    if reason:
        fields["reason"] = reason
    if follows:
        fields["follows"] = follows
    if isinstance(request, Mapping) and not text_problems(request):
        purpose = request.get("purpose")
        # never a purpose that carries the child (an NHS number, their name...)
        if isinstance(purpose, str) and not child_in_text(
                purpose, identity_of(request.get("child"))):
            fields["purpose"] = purpose[:PURPOSE_KEPT]
        basis = request.get("basis")
        if isinstance(basis, Mapping) and isinstance(basis.get("type"), str):
            fields["basis_type"] = basis["type"][:40]
    return fields


# -- the answer ------------------------------------------------------------------------


def answer_of(lookup_id: str, outcomes: Sequence[Outcome], areas: Collection[str]
              ) -> dict[str, Any]:
    """The merged answer the practitioner sees: every authority's outcome (those
    that answered first), the professionals of those that know the child, notices."""
    outcomes = sorted(outcomes, key=lambda o: (o.status not in ANSWERED, o.name))
    professionals = merge(((o.id, o.professionals) for o in outcomes if o.status == MATCH),
                          {o.id: o.name for o in outcomes})
    return {
        "lookup_id": lookup_id,
        # Nobody asked is nobody answering: never a complete "no one is involved".
        "complete": bool(outcomes) and all(o.status in ANSWERED for o in outcomes),
        "authorities": [o.public() for o in outcomes],
        "professionals": professionals[:MAX_LISTED],
        "notices": [{"authority": o.id, "text": o.notice} for o in outcomes if o.notice]
        + broker_notices(outcomes, areas, listed=len(professionals)),
    }


def broker_notices(outcomes: Sequence[Outcome], areas: Collection[str], *, listed: int
                   ) -> list[dict[str, Any]]:
    """What the broker itself says of the answer: nobody asked, national only, cut."""
    notices: list[dict[str, Any]] = []
    if not outcomes:
        notices.append({"authority": None, "text": (
            "No registered authority covers the areas given. Add the child's postcode "
            "or an area code to ask local authorities.")})
    elif not areas:
        notices.append({"authority": None, "text": (
            "No postcode or area was given, so only national services were asked.")})
    if listed > MAX_LISTED:
        notices.append({"authority": None, "text": LISTED_CUT.format(
            count=listed, limit=MAX_LISTED)})
    return notices


def wire_child(child: Mapping[str, Any]) -> dict[str, Any]:
    """The child as the protocol sends it (and as its pseudonym is computed)."""
    dob = child.get("date_of_birth")
    return {
        "nhs_number": child.get("nhs_number"),
        "given_name": child.get("given_name"),
        "family_name": child.get("family_name"),
        "date_of_birth": dob.isoformat() if isinstance(dob, date) else dob,
        "postcodes": list(child.get("postcodes") or []),
    }


def jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, date):
        return value.isoformat()
    return value


def _paths(errors: Mapping[str, Any], prefix: str = "") -> Iterator[str]:
    for key, value in errors.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, Mapping):
            yield from _paths(value, path)
        else:
            yield path
