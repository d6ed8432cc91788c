"""The lookup journey: check, route, audit, fan out, merge, audit.

Both faces (the JSON API and the web pages) call this; neither holds rules.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from federator.audit.pseudonym import child_pseudonym
from federator.audit.trail import AuditTrail
from federator.lookup.consent import FieldErrors, check_basis, needs_review
from federator.lookup.fanout import FanOut, Outcome, unavailable
from federator.lookup.ids import new_lookup_id
from federator.lookup.merge import merge
from federator.lookup.routing import Endpoint, route

log = logging.getLogger(__name__)

ANSWERED = ("match", "no_match")


@dataclass(frozen=True)
class Principal:
    id: str
    name: str
    roles: tuple[str, ...]
    organisation: str
    job_title: str = ""
    authority: str | None = None

    def actor(self, role: str) -> dict[str, Any]:
        return {"actor_id": self.id, "actor_role": role,
                "actor_organisation": self.organisation}


@dataclass(frozen=True)
class LookupPolicy:
    audit_key: str
    consent_max_age_days: int
    deadline_default_ms: int
    deadline_max_ms: int


class LookupService:
    def __init__(self, *, policy: LookupPolicy, trail: AuditTrail, fanout: FanOut,
                 endpoints: Callable[[], Sequence[Endpoint]],
                 ask: Callable[[Endpoint, Mapping[str, Any], float], Mapping[str, Any]],
                 postcode_table: Mapping[str, str],
                 today: Callable[[], date] = lambda: datetime.now(UTC).date()) -> None:
        self.policy = policy
        self.trail = trail
        self.fanout = fanout
        self.endpoints = endpoints
        self.ask = ask
        self.postcode_table = postcode_table
        self.today = today

    # -- before anything is sent ------------------------------------------------

    def problems(self, request: Mapping[str, Any]) -> dict[str, Any]:
        """Field errors beyond the schema's: the consent policy and the deadline."""
        errors: dict[str, Any] = {}
        basis_errors: FieldErrors = check_basis(
            request["basis"], today=self.today(),
            consent_max_age_days=self.policy.consent_max_age_days)
        if basis_errors:
            errors["basis"] = basis_errors
        deadline = request.get("deadline_ms")
        if deadline is not None and deadline > self.policy.deadline_max_ms:
            errors["deadline_ms"] = [f"Must be at most {self.policy.deadline_max_ms}."]
        return errors

    def refuse(self, principal: Principal, role: str, errors: Mapping[str, Any],
               request: Mapping[str, Any] | None = None) -> None:
        """Audit a refused lookup: which fields failed, never their values."""
        fields = sorted(_paths(errors))
        extra: dict[str, Any] = {}
        if isinstance(request, Mapping):
            if isinstance(request.get("purpose"), str):
                extra["purpose"] = request["purpose"][:500]
            basis = request.get("basis")
            if isinstance(basis, Mapping) and isinstance(basis.get("type"), str):
                extra["basis_type"] = basis["type"][:40]
        self.trail.append("lookup.refused", **principal.actor(role), fields=fields, **extra)

    # -- the lookup ---------------------------------------------------------------

    def run(self, request: Mapping[str, Any], principal: Principal, *, role: str = "practitioner"
            ) -> Iterator[tuple[str, dict[str, Any]]]:
        """Write ``lookup.requested`` (raises ``AuditUnavailable``), then yield
        ``("authority", outcome)`` for each authority as it answers and finally
        ``("result", answer)``. ``lookup.completed`` is written even when the
        caller stops listening early."""
        lookup_id = new_lookup_id()
        child = _wire_child(request["child"])
        scope = request.get("scope", "targeted")
        plan = route(self.endpoints(), areas=request.get("areas") or [],
                     postcodes=child["postcodes"], table=self.postcode_table, scope=scope)
        deadline_ms = request.get("deadline_ms") or self.policy.deadline_default_ms
        pseudonym = child_pseudonym(child, self.policy.audit_key)
        basis = _jsonable(request["basis"])
        actor = principal.actor(role)
        self.trail.append(
            "lookup.requested", lookup_id=lookup_id, **actor, purpose=request["purpose"],
            basis_type=basis["type"], basis=basis, child_pseudonym=pseudonym, scope=scope,
            areas=sorted(plan.areas), include_past=bool(request.get("include_past")),
            deadline_ms=deadline_ms,
            authorities=[e.id for e in (*plan.ask, *plan.unavailable)],
            flags=needs_review(basis, scope),
        )
        return self._answer(lookup_id, request, principal, actor, child, basis, plan.ask,
                            [unavailable(e, "endpoint suspended") for e in plan.unavailable],
                            pseudonym, deadline_ms, plan.areas)

    def _answer(self, lookup_id: str, request: Mapping[str, Any], principal: Principal,
                actor: dict[str, Any], child: dict[str, Any], basis: dict[str, Any],
                ask: Sequence[Endpoint], outcomes: list[Outcome], pseudonym: str,
                deadline_ms: int, areas: frozenset[str]) -> Iterator[tuple[str, dict[str, Any]]]:
        payload = {
            "lookup_id": lookup_id, "child": child, "basis": basis,
            "purpose": request["purpose"],
            "requester": {"id": principal.id, "name": principal.name,
                          "role": principal.job_title, "organisation": principal.organisation},
            "include_past": bool(request.get("include_past")),
        }
        deadline = time.monotonic() + deadline_ms / 1000
        stream = self.fanout.run(ask, lambda e, d: self.ask(e, payload, d), deadline=deadline)
        listening = True
        try:
            for outcome in outcomes:
                yield "authority", outcome.public()
            for outcome in stream:
                outcomes.append(outcome)
                yield "authority", outcome.public()
        except GeneratorExit:
            listening = False
            outcomes.extend(stream)  # finish within the deadline, for the audit
        result = _result(lookup_id, outcomes, areas)
        self.trail.append(
            "lookup.completed", lookup_id=lookup_id, **actor, child_pseudonym=pseudonym,
            complete=result["complete"], client_gone=not listening,
            outcomes=[{"id": o.id, "outcome": o.outcome, "latency_ms": o.latency_ms,
                       "professionals": len(o.professionals)} for o in outcomes],
            professionals=len(result["professionals"]),
        )
        log.info("lookup completed", extra={"lookup_id": lookup_id,
                                            "complete": result["complete"]})
        if listening:
            yield "result", result


def _result(lookup_id: str, outcomes: Sequence[Outcome], areas: frozenset[str]
            ) -> dict[str, Any]:
    outcomes = sorted(outcomes, key=lambda o: (o.outcome not in ANSWERED, o.name))
    notices = [{"authority": o.id, "text": o.notice} for o in outcomes if o.notice]
    if not outcomes:
        notices.append({"authority": None, "text": (
            "No registered authority covers the areas given. Add the child's postcode "
            "or an area code to ask local authorities.")})
    elif not areas:
        notices.append({"authority": None, "text": (
            "No postcode or area was given, so only national services were asked.")})
    return {
        "lookup_id": lookup_id,
        "complete": all(o.outcome in ANSWERED for o in outcomes),
        "authorities": [o.public() for o in outcomes],
        "professionals": merge((o.id, o.professionals) for o in outcomes
                               if o.outcome == "match"),
        "notices": notices,
    }


def _wire_child(child: Mapping[str, Any]) -> dict[str, Any]:
    dob = child.get("date_of_birth")
    return {
        "nhs_number": child.get("nhs_number"),
        "given_name": child.get("given_name"),
        "family_name": child.get("family_name"),
        "date_of_birth": dob.isoformat() if isinstance(dob, date) else dob,
        "postcodes": list(child.get("postcodes") or []),
    }


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
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
