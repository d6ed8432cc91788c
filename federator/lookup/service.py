"""The lookup journey: check, route, audit, fan out, merge, audit.

Both faces (the JSON API and the web pages) call this; neither holds rules.
They map what it raises to statuses and pages: ``AuditUnavailable`` and
``StateUnavailable`` (503, nothing sent), ``NotYours`` (404),
``RetryRefused`` (409, already audited) and ``OverBudget`` (429: nothing sent;
the first in each limit's window is audited, ``federator.lookup.budget``).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from federator import metrics
from federator.audit.flags import budget_flag, own_family_name_flag, practitioner_family_name
from federator.audit.pseudonym import child_pseudonym
from federator.audit.trail import AuditTrail, AuditUnavailable
from federator.auth.principal import Principal
from federator.lookup.breakers import Breakers, Ticket, judged
from federator.lookup.budget import LookupBudget, OverBudget
from federator.lookup.consent import FieldErrors, check_basis
from federator.lookup.dispatch import Dispatcher
from federator.lookup.events import Event, LookupEvents
from federator.lookup.fanout import FanOut, Outcome
from federator.lookup.followups import RetryRefused, load_lookup, retry_authorities
from federator.lookup.ids import new_lookup_id
from federator.lookup.interrupted import interrupted_after_s
from federator.lookup.journey import (
    STATE_DOWN_REASON,
    PreparedLookup,
    answer_of,
    completed_fields,
    jsonable,
    narrow,
    narrowed_to,
    refusal_fields,
    requested_fields,
    wire_child,
)
from federator.lookup.routing import Endpoint, areas_added, route
from federator.lookup.tracing import OFF, Tracing, lookup_span, note_outcomes
from federator.names import (
    LOOKUP_COMPLETED,
    LOOKUP_RATE_LIMITED,
    LOOKUP_REFUSED,
    LOOKUP_REQUESTED,
)
from federator.state import StateUnavailable

log = logging.getLogger(__name__)

#: The question was audited and sent, but the answer's record could not be written
#: (``AuditUnavailable`` from the events): an answer the trail does not hold is not shown.
COMPLETION_UNRECORDED = (
    "The lookup was recorded and sent, but the audit trail could not record its answer, "
    "so the answer is not shown. Try again in a minute.")


@dataclass(frozen=True)
class LookupPolicy:
    audit_key: str
    consent_max_age_days: int
    deadline_default_ms: int
    deadline_max_ms: int
    retry_window_s: int = 86400


class LookupService:
    def __init__(self, *, policy: LookupPolicy, trail: AuditTrail, fanout: FanOut,
                 dispatcher: Dispatcher, endpoints: Callable[[], Sequence[Endpoint]],
                 postcode_table: Mapping[str, str], breakers: Breakers | None = None,
                 budget: LookupBudget | None = None,
                 now: Callable[[], datetime] = lambda: datetime.now(UTC),
                 tracing: Tracing = OFF) -> None:
        self.policy = policy
        self.trail = trail
        self.fanout = fanout
        self.dispatcher = dispatcher
        self.endpoints = endpoints
        self.postcode_table = postcode_table
        self.breakers = breakers
        #: one budget per practitioner across every route (None: unlimited)
        self.budget = budget
        #: the clock (UTC): consent ages are counted in its days
        self.now = now
        #: a span per lookup, the parent of the fan-out's call spans (docs/tracing.md)
        self.tracing = tracing

    # -- before anything is sent ------------------------------------------------

    def problems(self, request: Mapping[str, Any]) -> dict[str, Any]:
        """Field errors beyond the schema's: the consent policy and the deadline."""
        errors: dict[str, Any] = {}
        basis_errors: FieldErrors = check_basis(
            request["basis"], today=self.now().date(),
            consent_max_age_days=self.policy.consent_max_age_days)
        if basis_errors:
            errors["basis"] = basis_errors
        deadline = request.get("deadline_ms")
        if deadline is not None and deadline > self.policy.deadline_max_ms:
            errors["deadline_ms"] = [f"Must be at most {self.policy.deadline_max_ms}."]
        return errors

    def pseudonym(self, child: Mapping[str, Any]) -> str:
        """The child's audit pseudonym, as a lookup of ``child`` would record it."""
        return child_pseudonym(wire_child(child), self.policy.audit_key)

    @property
    def interrupted_after_s(self) -> float:
        """A lookup this old with no completion was cut off (``lookup.interrupted``)."""
        return interrupted_after_s(self.policy.deadline_max_ms)

    def endpoint_names(self) -> dict[str, str]:
        return {e.id: e.name for e in self.endpoints()}

    def refuse(self, principal: Principal | None, role: str | None,
               errors: Mapping[str, Any] | None = None, request: Any = None, *,
               reason: str | None = None, follows: str | None = None) -> None:
        """Audit a refused lookup, wherever it was refused: which fields failed
        (never their values), or why. Raises ``AuditUnavailable``, or
        ``OverBudget`` beyond the refused-lookup budget (then nothing more is
        written than, once a window, ``lookup.rate_limited``)."""
        actor = principal.actor(role or "practitioner") if principal else {}
        if principal is not None and self.budget is not None and reason != STATE_DOWN_REASON:
            try:
                self.budget.spend_refused(principal)
            except OverBudget as e:
                self._over_budget(principal, role, e, follows)
                raise
            except StateUnavailable:
                pass  # the refusal is recorded all the same
        self.trail.append(LOOKUP_REFUSED, **actor, **refusal_fields(
            errors, request, reason=reason, follows=follows))
        metrics.lookup("unavailable" if reason == STATE_DOWN_REASON else "refused")

    # -- the lookup ---------------------------------------------------------------

    def run(self, request: Mapping[str, Any], principal: Principal, *,
            role: str = "practitioner", follows: str | None = None,
            only: Collection[str] | None = None) -> LookupEvents:
        """Write ``lookup.requested`` (raises ``AuditUnavailable``), then yield
        ``("authority", outcome)`` for each authority as it answers and finally
        ``("result", answer)``. ``only`` narrows the routed authorities to those ids
        (a retry, or the request's ``authorities``); ``follows`` names the lookup a
        retry finishes. ``lookup.completed`` is written even when the
        caller stops listening early (``close()`` on the events, which every
        WSGI server calls when the client goes away) or never starts reading.

        Raises ``StateUnavailable`` (audited as ``lookup.refused``, nothing sent)
        when Redis is configured and down: circuit breakers cannot be enforced."""
        self._spend(principal, role, request, follows)
        lookup = self.prepare(request, principal, role=role, follows=follows, only=only)
        # committed to the trail's queue before any authority is asked, integrated
        # into the chain in the background (federator.audit.sequencer)
        self.trail.enqueue(LOOKUP_REQUESTED, **requested_fields(lookup))
        return LookupEvents(lookup.id, lookup.authorities,
                            lambda listening: self._answer(lookup, listening))

    def retry(self, request: Mapping[str, Any], principal: Principal, lookup_id: str, *,
              role: str = "practitioner") -> LookupEvents:
        """Ask again only the authorities that did not answer the practitioner's
        lookup ``lookup_id``, for the same child. Raises ``NotYours``, or
        ``RetryRefused`` once the refusal is audited."""
        first = load_lookup(self.trail, lookup_id, principal.id, now=self.now(),
                            interrupted_after_s=self.interrupted_after_s)
        try:
            only = retry_authorities(first, pseudonym=self.pseudonym(request["child"]),
                                     now=self.now(), window_s=self.policy.retry_window_s)
        except RetryRefused as e:
            self.refuse(principal, role, request=request, reason=str(e), follows=lookup_id)
            raise
        return self.run(request, principal, role=role, follows=lookup_id, only=only)

    def prepare(self, request: Mapping[str, Any], principal: Principal, *,
                role: str = "practitioner", follows: str | None = None,
                only: Collection[str] | None = None) -> PreparedLookup:
        """Route the request and admit it past the breakers: the lookup as a value."""
        # From the moment the request is taken: the breakers' read and the audit
        # write come out of the practitioner's wait, never on top of it.
        taken = time.monotonic()
        child = wire_child(request["child"])
        scope = request.get("scope", "targeted")
        plan = route(self.endpoints(), areas=request.get("areas") or [],
                     postcodes=child["postcodes"], table=self.postcode_table, scope=scope)
        only = narrowed_to(request, only)
        if only is not None:
            plan = narrow(plan, only)
        deadline_ms = request.get("deadline_ms") or self.policy.deadline_default_ms
        added = areas_added(request.get("areas") or [], child["postcodes"],
                            self.postcode_table)
        own = own_family_name_flag(child.get("family_name"), practitioner_family_name(
            principal.family_name, principal.name))
        return PreparedLookup(
            id=new_lookup_id(), principal=principal, role=role, child=child,
            pseudonym=child_pseudonym(child, self.policy.audit_key),
            purpose=request["purpose"], basis=jsonable(request["basis"]), scope=scope,
            include_past=bool(request.get("include_past")), plan=plan,
            deadline_ms=deadline_ms, deadline=taken + deadline_ms / 1000,
            tickets=self._admit(plan.ask, principal, role, request),
            follows=follows, only=only, flags=(own,) if own else (),
            scope_reason=request.get("scope_reason"), areas_added=added)

    def _spend(self, principal: Principal, role: str, request: Mapping[str, Any],
               follows: str | None) -> None:
        """Spend one lookup from the practitioner's and the organisation's budgets,
        whatever route the lookup came by. Raises ``OverBudget`` (the first of its
        window audited) or ``StateUnavailable`` (audited as refused)."""
        if self.budget is None:
            return
        try:
            self.budget.spend(principal)
        except OverBudget as e:
            self._over_budget(principal, role, e, follows)
            raise
        except StateUnavailable:
            self.refuse(principal, role, request=request, reason=STATE_DOWN_REASON)
            raise

    def _over_budget(self, principal: Principal, role: str | None, over: OverBudget,
                     follows: str | None) -> None:
        """Once per limit and window: ``lookup.rate_limited``, flagged for auditors.
        Every other attempt beyond the budget is only counted (metrics)."""
        metrics.lookup("rate_limited")
        if not over.first:
            return
        limit = over.limit
        try:
            self.trail.append(
                LOOKUP_RATE_LIMITED, **principal.actor(role or "practitioner"),
                scope=limit.scope, limit=limit.text, window_s=limit.window_s,
                **({"follows": follows} if follows else {}),
                flags=[budget_flag(limit.scope, limit.text)])
        except AuditUnavailable:
            if self.budget is not None:
                with contextlib.suppress(StateUnavailable):  # the answer is a 429 anyway
                    self.budget.forget_noted(limit)  # the next attempt tries to record it
            log.error("a lookup beyond its budget could not be audited")

    def _admit(self, ask: Sequence[Endpoint], principal: Principal, role: str,
               request: Mapping[str, Any]) -> dict[str, Ticket]:
        if self.breakers is None:
            return {e.id: Ticket("closed") for e in ask}
        try:
            return self.breakers.admit([e.id for e in ask])
        except StateUnavailable:
            self.refuse(principal, role, request=request, reason=STATE_DOWN_REASON)
            raise

    def _answer(self, lookup: PreparedLookup, listening: Callable[[], bool]
                ) -> Iterator[Event]:
        outcomes = lookup.withheld()
        # the lookup's span: never current (this is a generator), the calls' parent
        span = lookup_span(self.tracing, lookup.id, len(lookup.asked), lookup.deadline_ms)
        traced = {"parent": span} if span is not None else {}
        try:
            for outcome in outcomes:
                metrics.authority(outcome.id, outcome.status, outcome.latency_ms)
                yield "authority", outcome.public()
            stream = self.fanout.run(tuple(lookup.asked.values()),
                                     self.dispatcher.calls(lookup.payload()),
                                     deadline=lookup.deadline, **traced)
            for outcome in stream:
                outcomes.append(outcome)
                metrics.authority(outcome.id, outcome.status, outcome.latency_ms)
                self._record_breaker(lookup, outcome)
                if listening():
                    yield "authority", outcome.public()
        finally:
            if span is not None:
                note_outcomes(span, [o.status for o in outcomes])
                span.end()
        answer = answer_of(lookup.id, outcomes, lookup.plan.areas)
        metrics.lookup("complete" if answer["complete"] else "partial")
        self.trail.enqueue(LOOKUP_COMPLETED, **completed_fields(
            lookup, outcomes, answer, client_gone=not listening()))
        log.info("lookup completed", extra={"lookup_id": lookup.id,
                                            "complete": answer["complete"]})
        if listening():
            yield "result", answer

    def _record_breaker(self, lookup: PreparedLookup, outcome: Outcome) -> None:
        """A timeout counts against an authority only if the lookup gave it the
        broker's usual wait (``breakers.judged``)."""
        if self.breakers is None:
            return
        endpoint = lookup.asked[outcome.id]
        fair_ms = min(endpoint.timeout_ms, self.policy.deadline_default_ms)
        self.breakers.record(outcome.id, outcome.status, lookup.tickets[outcome.id],
                             counted=judged(outcome.status, sent=outcome.sent,
                                            given_ms=lookup.deadline_ms, fair_ms=fair_ms))
