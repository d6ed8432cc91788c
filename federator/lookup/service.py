"""The lookup journey: check, route, audit, fan out, merge, audit.

Both faces (the JSON API and the web pages) call this; neither holds rules.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from adapters.protocol import WirePayload
from federator import metrics
from federator.audit.flags import own_family_name_flag, practitioner_family_name
from federator.audit.pseudonym import child_pseudonym
from federator.audit.trail import AuditTrail
from federator.lookup.breakers import Breakers, Ticket, judged
from federator.lookup.consent import FieldErrors, check_basis
from federator.lookup.fanout import FanOut, Outcome, unavailable
from federator.lookup.ids import new_lookup_id
from federator.lookup.merge import merge
from federator.lookup.routing import Endpoint, Route, route
from federator.state import StateUnavailable

log = logging.getLogger(__name__)

ANSWERED = ("match", "no_match")

#: The question was audited and sent, but the answer's record could not be written
#: (``AuditUnavailable`` from the events): an answer the trail does not hold is not shown.
COMPLETION_UNRECORDED = (
    "The lookup was recorded and sent, but the audit trail could not record its answer, "
    "so the answer is not shown. Try again in a minute.")


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


@dataclass(frozen=True)
class LookupPolicy:
    audit_key: str
    consent_max_age_days: int
    deadline_default_ms: int
    deadline_max_ms: int
    retry_window_s: int = 86400


class LookupService:
    def __init__(self, *, policy: LookupPolicy, trail: AuditTrail, fanout: FanOut,
                 endpoints: Callable[[], Sequence[Endpoint]],
                 ask: Callable[[Endpoint, Mapping[str, Any], float], Mapping[str, Any]],
                 postcode_table: Mapping[str, str],
                 aask: Callable[[Endpoint, Mapping[str, Any], float], Any] | None = None,
                 today: Callable[[], date] = lambda: datetime.now(UTC).date(),
                 breakers: Breakers | None = None) -> None:
        self.policy = policy
        self.trail = trail
        self.fanout = fanout
        self.endpoints = endpoints
        self.ask = ask
        #: the same call as a coroutine (or None for a client that only has ``lookup``)
        self.aask = aask
        self.postcode_table = postcode_table
        self.today = today
        self.breakers = breakers

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

    def pseudonym(self, child: Mapping[str, Any]) -> str:
        """The child's audit pseudonym, as a lookup of ``child`` would record it."""
        return child_pseudonym(_wire_child(child), self.policy.audit_key)

    def endpoint_names(self) -> dict[str, str]:
        return {e.id: e.name for e in self.endpoints()}

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
        metrics.lookup("refused")

    # -- the lookup ---------------------------------------------------------------

    def run(self, request: Mapping[str, Any], principal: Principal, *, role: str = "practitioner",
            follows: str | None = None, only: Collection[str] | None = None
            ) -> Iterator[tuple[str, dict[str, Any]]]:
        """Write ``lookup.requested`` (raises ``AuditUnavailable``), then yield
        ``("authority", outcome)`` for each authority as it answers and finally
        ``("result", answer)``. ``only`` narrows the routed authorities to those ids
        (a retry, or the request's ``authorities``); ``follows`` names the lookup a
        retry finishes. ``lookup.completed`` is written even when the
        caller stops listening early (``close()`` on the events, which every
        WSGI server calls when the client goes away) or never starts reading.

        Raises ``StateUnavailable`` (audited as ``lookup.refused``, nothing sent)
        when Redis is configured and down: circuit breakers cannot be enforced."""
        lookup_id = new_lookup_id()
        child = _wire_child(request["child"])
        scope = request.get("scope", "targeted")
        plan = route(self.endpoints(), areas=request.get("areas") or [],
                     postcodes=child["postcodes"], table=self.postcode_table, scope=scope)
        if request.get("authorities"):
            only = set(request["authorities"]) & set(only if only is not None
                                                     else request["authorities"])
        if only is not None:
            plan = narrow(plan, only)
        deadline_ms = request.get("deadline_ms") or self.policy.deadline_default_ms
        # From the moment the request is taken: the breakers' read and the audit
        # write come out of the practitioner's wait, never on top of it.
        deadline = time.monotonic() + deadline_ms / 1000
        pseudonym = child_pseudonym(child, self.policy.audit_key)
        basis = _jsonable(request["basis"])
        actor = principal.actor(role)
        tickets = self._admit(plan.ask, principal, role, request)
        followup: dict[str, Any] = {"follows": follows} if follows else {}
        if only is not None:
            followup["only"] = sorted(only)
        own = own_family_name_flag(child.get("family_name"), practitioner_family_name(
            principal.family_name, principal.name))
        if own:
            followup["flags"] = [own]
        self.trail.append(
            "lookup.requested", lookup_id=lookup_id, **actor, purpose=request["purpose"],
            basis_type=basis["type"], basis=basis, child_pseudonym=pseudonym, scope=scope,
            areas=sorted(plan.areas), include_past=bool(request.get("include_past")),
            deadline_ms=deadline_ms, **followup,
            authorities=[e.id for e in (*plan.ask, *plan.unavailable)],
            # flags: computed by the trail as it writes the record (federator.audit.flags)
        )
        outcomes = [unavailable(e, "endpoint suspended") for e in plan.unavailable]
        outcomes += [unavailable(e, "circuit open: recent calls failed; tried again "
                                    "after a cool-down")
                     for e in plan.ask if not tickets[e.id].allowed]
        ask = [e for e in plan.ask if tickets[e.id].allowed]
        events = LookupEvents(lookup_id, [e.id for e in (*plan.ask, *plan.unavailable)])
        events.start(self._answer(events, lookup_id, request, principal, actor, child, basis,
                                  ask, outcomes, tickets, pseudonym, deadline_ms, deadline,
                                  plan.areas))
        return events

    def _admit(self, ask: Sequence[Endpoint], principal: Principal, role: str,
               request: Mapping[str, Any]) -> dict[str, Ticket]:
        if self.breakers is None:
            return {e.id: Ticket("closed") for e in ask}
        try:
            return self.breakers.admit([e.id for e in ask])
        except StateUnavailable:
            self.trail.append("lookup.refused", **principal.actor(role), fields=[],
                              reason="shared state unavailable",
                              purpose=str(request.get("purpose", ""))[:500])
            raise

    def _answer(self, events: LookupEvents, lookup_id: str, request: Mapping[str, Any],
                principal: Principal, actor: dict[str, Any], child: dict[str, Any],
                basis: dict[str, Any], ask: Sequence[Endpoint], outcomes: list[Outcome],
                tickets: Mapping[str, Ticket], pseudonym: str, deadline_ms: int,
                deadline: float, areas: frozenset[str]
                ) -> Iterator[tuple[str, dict[str, Any]]]:
        payload = WirePayload({  # encoded once for every authority
            "lookup_id": lookup_id, "child": child, "basis": basis,
            "purpose": request["purpose"],
            "requester": {"id": principal.id, "name": principal.name,
                          "role": principal.job_title, "organisation": principal.organisation,
                          **({"email": principal.email} if principal.email else {})},
            "include_past": bool(request.get("include_past")),
        })
        endpoints = {e.id: e for e in ask}
        aask = self.aask
        stream = self.fanout.run(
            ask, lambda e, d: self.ask(e, payload, d), deadline=deadline,
            aask=None if aask is None else lambda e, d: aask(e, payload, d))
        for outcome in list(outcomes):
            metrics.authority(outcome.id, outcome.outcome, outcome.latency_ms)
            yield "authority", outcome.public()
        for outcome in stream:
            outcomes.append(outcome)
            metrics.authority(outcome.id, outcome.outcome, outcome.latency_ms)
            if self.breakers is not None:
                # A timeout counts against an authority only if the lookup gave it
                # the broker's usual wait (breakers.judged).
                fair_ms = min(endpoints[outcome.id].timeout_ms,
                              self.policy.deadline_default_ms)
                self.breakers.record(outcome.id, outcome.outcome, tickets[outcome.id],
                                     counted=judged(outcome.outcome, sent=outcome.sent,
                                                    given_ms=deadline_ms, fair_ms=fair_ms))
            if events.listening:
                yield "authority", outcome.public()
        result = _result(lookup_id, outcomes, areas)
        metrics.lookup("complete" if result["complete"] else "partial")
        self.trail.append(
            "lookup.completed", lookup_id=lookup_id, **actor, child_pseudonym=pseudonym,
            complete=result["complete"], client_gone=not events.listening,
            outcomes=[{"id": o.id, "outcome": o.outcome, "latency_ms": o.latency_ms,
                       "professionals": len(o.professionals)} for o in outcomes],
            professionals=len(result["professionals"]),
        )
        log.info("lookup completed", extra={"lookup_id": lookup_id,
                                            "complete": result["complete"]})
        if events.listening:
            yield "result", result


class LookupEvents(Iterator[tuple[str, dict[str, Any]]]):
    """The events of one lookup. ``close()`` (the client went away) finishes the
    fan-out within its deadline and writes ``lookup.completed`` all the same,
    whether or not reading had started."""

    def __init__(self, lookup_id: str = "", authorities: Sequence[str] = ()) -> None:
        self.lookup_id = lookup_id
        #: every authority this lookup reports on (asked, or unavailable without asking)
        self.authorities = tuple(authorities)
        self.listening = True
        self._events: Iterator[tuple[str, dict[str, Any]]] = iter(())
        self._finished = False

    def start(self, events: Iterator[tuple[str, dict[str, Any]]]) -> None:
        self._events = events

    def __next__(self) -> tuple[str, dict[str, Any]]:
        try:
            return next(self._events)
        except StopIteration:
            self._finished = True
            raise

    def result(self) -> dict[str, Any]:
        """Read every event and give the merged answer (for a face that does not
        stream); the lookup is closed, so finished and audited, whatever happens."""
        answer: dict[str, Any] = {}
        try:
            for kind, data in self:
                if kind == "result":
                    answer = data
        finally:
            self.close()
        return answer

    def close(self) -> None:
        if self._finished:
            return
        self.listening = False
        self._finished = True
        for _ in self._events:  # yields nothing more once nobody listens
            pass


def narrow(plan: Route, only: Collection[str]) -> Route:
    """The routed plan, asking only the authorities named (never widening it)."""
    keep = set(only)
    return Route(ask=tuple(e for e in plan.ask if e.id in keep),
                 unavailable=tuple(e for e in plan.unavailable if e.id in keep),
                 areas=plan.areas)


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
        # Nobody asked is nobody answering: never a complete "no one is involved".
        "complete": bool(outcomes) and all(o.outcome in ANSWERED for o in outcomes),
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
