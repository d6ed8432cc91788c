"""LookupService on its own: a fake trail and fan-out at its constructor's seams,
the real journey, routing, breakers (in-process) and dispatcher around them."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from adapters.base import AdapterError
from federator.audit.trail import AuditUnavailable
from federator.auth.principal import Principal
from federator.lookup.breakers import BreakerPolicy, Breakers
from federator.lookup.dispatch import Dispatcher
from federator.lookup.fanout import Calls, Outcome
from federator.lookup.followups import NotYours, RetryRefused
from federator.lookup.journey import (
    CIRCUIT_OPEN,
    NOT_ASKED_CIRCUIT_OPEN,
    NOT_ASKED_SUSPENDED,
    STATE_DOWN_REASON,
    SUSPENDED,
)
from federator.lookup.routing import Endpoint
from federator.lookup.service import LookupPolicy, LookupService
from federator.names import (
    ERROR,
    LOOKUP_COMPLETED,
    LOOKUP_REFUSED,
    LOOKUP_REQUESTED,
    MATCH,
    NO_MATCH,
    TIMEOUT,
    UNAVAILABLE,
)
from federator.state import SharedState, StateUnavailable

LEEDS = "E08000035"
TABLE = {"LS6": LEEDS}
TODAY = date(2026, 12, 3)
NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
PRACTITIONER = Principal(id="sw-1", name="Sam Worker", roles=("practitioner",),
                         organisation="Leeds CS", job_title="Social worker",
                         email="sam@leeds.example", family_name="Worker")


def endpoint(id_: str, coverage: Sequence[str] = (LEEDS,), status: str = "active",
             timeout_ms: int = 3000) -> Endpoint:
    return Endpoint(id=id_, name=id_.title(), code="E0", coverage=tuple(coverage),
                    protocol="federator-lookup/1", url=f"https://{id_}.example/f",
                    timeout_ms=timeout_ms, contact="c", status=status)


def request(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "child": {"nhs_number": "9434765919", "given_name": "Amira",
                  "family_name": "Hassan", "date_of_birth": date(2015, 3, 1),
                  "postcodes": ["LS6 2AB"]},
        "purpose": "Assessment under section 17: finding services already involved",
        "basis": {"type": "consent", "given_by": "parent", "given_on": date(2026, 11, 20),
                  "reference": "CASE-1"},
        "include_past": True,
    }
    body.update(changes)
    return body


class FakeTrail:
    def __init__(self) -> None:
        self.written: list[dict[str, Any]] = []
        self.down_for: set[str] = set()

    def append(self, event: str, **fields: Any) -> dict[str, Any]:
        if event in self.down_for:
            raise AuditUnavailable("the trail is down")
        record = {"seq": len(self.written) + 1, "at": NOW.isoformat(), "event": event,
                  **fields}
        self.written.append(record)
        return record

    def enqueue(self, event: str, **fields: Any) -> None:
        """The lookup's path (``AuditTrail.enqueue``): committed, not read back."""
        self.append(event, **fields)

    def records(self, *, event: str | None = None, lookup_id: str | None = None,
                limit: int = 100) -> list[dict[str, Any]]:
        return [r for r in self.written if (lookup_id is None or r.get("lookup_id") == lookup_id)
                and (event is None or r["event"] == event)][:limit]

    def events(self) -> list[str]:
        return [r["event"] for r in self.written]

    def last(self, event: str) -> dict[str, Any]:
        return [r for r in self.written if r["event"] == event][-1]


class FakeFanOut:
    """Asks each endpoint through the calls it is given (so the dispatcher's payload
    is what a real fan-out would send), or reports the outcome it is told to."""

    def __init__(self) -> None:
        self.asked: list[list[str]] = []
        self.told: dict[str, Outcome] = {}

    def run(self, endpoints: Sequence[Endpoint], calls: Calls, *, deadline: float
            ) -> Iterator[Outcome]:
        self.asked.append([e.id for e in endpoints])
        for e in endpoints:
            if e.id in self.told:
                yield self.told[e.id]
                continue
            try:
                answer = calls.ask(e, deadline)
            except AdapterError as error:
                yield Outcome(e.id, e.name, ERROR, 5, str(error))
                continue
            yield Outcome(e.id, e.name, answer["status"], 5, None,
                          list(answer.get("professionals") or []), answer.get("notice"))


class FakeClient:
    def __init__(self, answers: Mapping[str, Mapping[str, Any]]) -> None:
        self.answers = answers
        self.payloads: list[dict[str, Any]] = []

    def lookup(self, target: Any, payload: Any, *, deadline: float) -> Mapping[str, Any]:
        self.payloads.append(dict(payload))
        return self.answers[target.id]


PROFESSIONAL = {"name": "Jo Nurse", "role": "School nurse", "organisation": "Leeds NHS",
                "service": "School nursing", "current": True, "phone": "0113 000 0000"}


class World:
    def __init__(self, endpoints: Sequence[Endpoint], *, breakers: Breakers | None = None,
                 answers: Mapping[str, Mapping[str, Any]] | None = None) -> None:
        self.trail = FakeTrail()
        self.fanout = FakeFanOut()
        self.client = FakeClient(answers or {
            e.id: {"status": NO_MATCH, "professionals": []} for e in endpoints})
        self.service = LookupService(
            policy=LookupPolicy("k" * 40, 365, 5000, 15000, retry_window_s=3600),
            trail=self.trail, fanout=self.fanout,  # type: ignore[arg-type]
            dispatcher=Dispatcher({"federator-lookup/1": self.client}, lambda _: {}),
            endpoints=lambda: list(endpoints), postcode_table=TABLE, breakers=breakers,
            now=lambda: NOW)

    def ask(self, body: Mapping[str, Any] | None = None, **kwargs: Any) -> dict[str, Any]:
        return self.service.run(body or request(), PRACTITIONER, **kwargs).result()


def lookups_counted(outcome: str) -> float:
    from prometheus_client import REGISTRY

    return REGISTRY.get_sample_value("federator_lookups_total", {"outcome": outcome}) or 0.0


# -- the journey ----------------------------------------------------------------------


def test_the_question_is_audited_before_it_is_sent_and_the_answer_after() -> None:
    world = World([endpoint("leeds-cs"), endpoint("bradford", coverage=("E08000032",))],
                  answers={"leeds-cs": {"status": MATCH, "professionals": [PROFESSIONAL]}})
    answer = world.ask()
    assert world.trail.events() == [LOOKUP_REQUESTED, LOOKUP_COMPLETED]
    assert world.fanout.asked == [["leeds-cs"]]  # routed by the postcode's area only
    requested = world.trail.last(LOOKUP_REQUESTED)
    assert requested["authorities"] == ["leeds-cs"] and requested["areas"] == [LEEDS]
    assert requested["basis"]["given_on"] == "2026-11-20"
    # nothing that names the child is kept, only its pseudonym
    kept = repr(world.trail.written)
    for value in ("9434765919", "Amira", "Hassan", "2015-03-01", "LS6 2AB"):
        assert value not in kept
    assert requested["child_pseudonym"] == world.service.pseudonym(request()["child"])
    [sent] = world.client.payloads
    assert sent["lookup_id"] == requested["lookup_id"] == answer["lookup_id"]
    assert sent["child"]["date_of_birth"] == "2015-03-01"
    assert sent["requester"] == {"id": "sw-1", "name": "Sam Worker", "role": "Social worker",
                                 "organisation": "Leeds CS", "email": "sam@leeds.example"}
    assert answer["complete"] is True
    assert [p["name"] for p in answer["professionals"]] == ["Jo Nurse"]
    completed = world.trail.last(LOOKUP_COMPLETED)
    assert completed["outcomes"] == [{"id": "leeds-cs", "outcome": MATCH, "latency_ms": 5,
                                      "professionals": 1}]
    assert completed["client_gone"] is False and completed["professionals"] == 1


def test_a_suspended_authority_and_an_open_circuit_are_reported_not_asked() -> None:
    state = SharedState(None)
    breakers = Breakers(state, BreakerPolicy(failures=1, window_s=60, cooldown_s=60))
    world = World([endpoint("leeds-cs"), endpoint("paused", status="suspended"),
                   endpoint("failing")], breakers=breakers)
    breakers.record("failing", ERROR, breakers.admit(["failing"])["failing"])
    answer = world.ask()
    assert world.fanout.asked == [["leeds-cs"]]
    details = {a["id"]: (a["outcome"], a["detail"]) for a in answer["authorities"]}
    assert details == {"leeds-cs": (NO_MATCH, None), "paused": (UNAVAILABLE, SUSPENDED),
                       "failing": (UNAVAILABLE, CIRCUIT_OPEN)}
    assert answer["complete"] is False
    # the trail lists those asked apart from those not asked, with the reason
    requested = world.trail.last(LOOKUP_REQUESTED)
    assert requested["authorities"] == ["leeds-cs"]
    assert requested["not_asked"] == [{"id": "paused", "reason": NOT_ASKED_SUSPENDED},
                                      {"id": "failing", "reason": NOT_ASKED_CIRCUIT_OPEN}]
    outcomes = {o["id"]: o.get("not_asked") for o in world.trail.last(
        LOOKUP_COMPLETED)["outcomes"]}
    assert outcomes == {"leeds-cs": None, "paused": NOT_ASKED_SUSPENDED,
                        "failing": NOT_ASKED_CIRCUIT_OPEN}


def test_a_lookup_nobody_covers_is_not_complete() -> None:
    world = World([endpoint("york", coverage=("E06000014",))])
    answer = world.ask()
    assert world.fanout.asked == [[]]
    assert answer["complete"] is False
    assert "No registered authority covers" in answer["notices"][0]["text"]


def test_the_requests_authorities_narrow_the_plan_and_never_widen_it() -> None:
    world = World([endpoint("leeds-cs"), endpoint("leeds-health"),
                   endpoint("york", coverage=("E06000014",))])
    world.ask(request(authorities=["leeds-health", "york"]))
    assert world.fanout.asked == [["leeds-health"]]
    assert world.trail.last(LOOKUP_REQUESTED)["only"] == ["leeds-health", "york"]


def test_closing_before_reading_still_finishes_and_audits_the_lookup() -> None:
    world = World([endpoint("leeds-cs")])
    events = world.service.run(request(), PRACTITIONER)
    events.close()
    assert world.fanout.asked == [["leeds-cs"]]
    assert world.trail.events() == [LOOKUP_REQUESTED, LOOKUP_COMPLETED]
    assert world.trail.last(LOOKUP_COMPLETED)["client_gone"] is True
    assert list(events) == []


def test_nothing_is_sent_when_the_question_cannot_be_audited() -> None:
    world = World([endpoint("leeds-cs")])
    world.trail.down_for.add(LOOKUP_REQUESTED)
    with pytest.raises(AuditUnavailable):
        world.service.run(request(), PRACTITIONER)
    assert world.fanout.asked == [] and world.client.payloads == []


class DownState(SharedState):
    def get_many(self, keys: Sequence[str]) -> list[str | None]:
        raise StateUnavailable("shared state unavailable")


def test_breakers_that_cannot_be_read_refuse_the_lookup_audited_and_counted() -> None:
    world = World([endpoint("leeds-cs")], breakers=Breakers(DownState(None)))
    before = lookups_counted("unavailable")
    with pytest.raises(StateUnavailable):
        world.service.run(request(), PRACTITIONER)
    assert world.fanout.asked == []
    refused = world.trail.last(LOOKUP_REFUSED)
    assert refused["reason"] == STATE_DOWN_REASON and refused["fields"] == []
    assert refused["basis_type"] == "consent" and refused["actor_id"] == "sw-1"
    assert world.trail.events() == [LOOKUP_REFUSED]
    assert lookups_counted("unavailable") == before + 1


def test_a_timeout_counts_against_an_authority_only_after_the_usual_wait() -> None:
    breakers = Breakers(SharedState(None), BreakerPolicy(failures=1, window_s=60,
                                                         cooldown_s=60))
    world = World([endpoint("leeds-cs")], breakers=breakers)
    world.fanout.told["leeds-cs"] = Outcome("leeds-cs", "Leeds-Cs", TIMEOUT, 200)
    world.ask(request(deadline_ms=200))  # the practitioner's own short wait
    assert breakers.admit(["leeds-cs"])["leeds-cs"].allowed
    world.ask()  # the usual wait: the timeout is the authority's
    assert not breakers.admit(["leeds-cs"])["leeds-cs"].allowed


# -- refusals -------------------------------------------------------------------------


def test_a_refusal_names_the_fields_never_their_values_and_is_counted() -> None:
    world = World([endpoint("leeds-cs")])
    before = lookups_counted("refused")
    world.service.refuse(PRACTITIONER, "practitioner",
                         {"child": {"nhs_number": ["Not a valid NHS number."]},
                          "basis": {"given_on": ["Too old."]}},
                         {"purpose": "p" * 600, "basis": {"type": "consent"},
                          "child": {"nhs_number": "1234567890"}})
    refused = world.trail.last(LOOKUP_REFUSED)
    assert refused["fields"] == ["basis.given_on", "child.nhs_number"]
    assert refused["purpose"] == "p" * 500 and refused["basis_type"] == "consent"
    assert "1234567890" not in repr(refused)
    assert lookups_counted("refused") == before + 1


def test_text_that_cannot_be_stored_is_not_copied_into_the_refusal() -> None:
    world = World([endpoint("leeds-cs")])
    world.service.refuse(PRACTITIONER, "practitioner", {"purpose": ["Bad text."]},
                         {"purpose": "a\x00b", "basis": {"type": "consent"}})
    refused = world.trail.last(LOOKUP_REFUSED)
    assert refused["fields"] == ["purpose"]
    assert "purpose" not in {k for k in refused if k != "fields"}
    assert "basis_type" not in refused


def test_problems_check_the_basis_and_the_deadline() -> None:
    world = World([endpoint("leeds-cs")])
    stale = request(basis={"type": "consent", "given_by": "parent",
                           "given_on": TODAY - timedelta(days=400), "reference": "R"},
                    deadline_ms=20000)
    problems = world.service.problems(stale)
    assert set(problems) == {"basis", "deadline_ms"}
    assert world.service.problems(request()) == {}


# -- retries --------------------------------------------------------------------------


def test_a_retry_asks_only_the_authorities_that_did_not_answer() -> None:
    world = World([endpoint("leeds-cs"), endpoint("leeds-health")],
                  answers={"leeds-cs": {"status": MATCH, "professionals": [PROFESSIONAL]},
                           "leeds-health": {"status": NO_MATCH}})
    world.fanout.told["leeds-health"] = Outcome("leeds-health", "Leeds-Health", TIMEOUT,
                                                5000)
    first = world.ask()
    del world.fanout.told["leeds-health"]
    again = world.service.retry(request(), PRACTITIONER, first["lookup_id"]).result()
    assert world.fanout.asked[-1] == ["leeds-health"]
    requested = world.trail.last(LOOKUP_REQUESTED)
    assert requested["follows"] == first["lookup_id"] and requested["only"] == ["leeds-health"]
    assert [a["id"] for a in again["authorities"]] == ["leeds-health"]


def test_a_refused_retry_is_audited_with_its_reason_and_sends_nothing() -> None:
    world = World([endpoint("leeds-cs")])
    first = world.ask()  # everyone answered
    before = lookups_counted("refused")
    with pytest.raises(RetryRefused, match="nobody to ask again"):
        world.service.retry(request(), PRACTITIONER, first["lookup_id"])
    refused = world.trail.last(LOOKUP_REFUSED)
    assert refused["follows"] == first["lookup_id"]
    assert "nobody to ask again" in refused["reason"]
    assert refused["purpose"] == request()["purpose"] and refused["fields"] == []
    assert world.fanout.asked == [["leeds-cs"]]
    assert lookups_counted("refused") == before + 1


def test_a_retry_for_another_child_is_refused() -> None:
    world = World([endpoint("leeds-cs")])
    world.fanout.told["leeds-cs"] = Outcome("leeds-cs", "Leeds-Cs", TIMEOUT, 5000)
    first = world.ask()
    other = request(child={**request()["child"], "nhs_number": "9990824797"})
    with pytest.raises(RetryRefused, match="not the child of the first lookup"):
        world.service.retry(other, PRACTITIONER, first["lookup_id"])


def test_another_practitioners_lookup_cannot_be_retried() -> None:
    world = World([endpoint("leeds-cs")])
    first = world.ask()
    someone = Principal(id="sw-2", name="Other", roles=("practitioner",), organisation="X")
    with pytest.raises(NotYours):
        world.service.retry(request(), someone, first["lookup_id"])
    assert world.trail.events() == [LOOKUP_REQUESTED, LOOKUP_COMPLETED]


# -- what an answer says of the match -------------------------------------------------


def test_how_sure_an_authority_is_reaches_the_answer_and_its_reference_only_the_trail(
) -> None:
    from federator.lookup.fanout import FanOut

    answers = {
        "leeds-cs": {"status": MATCH, "confidence": 0.998, "record_ref": "r-abc",
                     "matched_on": ["given_name", "family_name", "date_of_birth", "postcode"],
                     "professionals": [PROFESSIONAL]},
        "leeds-health": {"status": NO_MATCH, "confidence": 0.7, "record_ref": "r-no",
                         "matched_on": ["family_name"], "ask_for": ["nhs_number"],
                         "notice": "A possible match was found."},
    }
    world = World([endpoint("leeds-cs"), endpoint("leeds-health")], answers=answers)
    world.service.fanout = FanOut(2)  # the real one: it reads the answers' fields
    try:
        answer = world.ask()
    finally:
        world.service.fanout.shutdown()
    shown = {a["id"]: a for a in answer["authorities"]}
    assert shown["leeds-cs"]["confidence"] == 0.998
    assert shown["leeds-cs"]["matched_on"] == ["given_name", "family_name",
                                               "date_of_birth", "postcode"]
    assert shown["leeds-health"]["ask_for"] == ["nhs_number"]
    assert "r-abc" not in repr(answer)  # the reference is never shown
    kept = {o["id"]: o for o in world.trail.last(LOOKUP_COMPLETED)["outcomes"]}
    assert kept["leeds-cs"]["record_ref"] == "r-abc"
    assert "record_ref" not in kept["leeds-health"]  # only a match names a record
    assert kept["leeds-health"]["matched_on"] == ["family_name"]


# -- the budget -----------------------------------------------------------------------


def test_the_budget_is_spent_before_anything_is_written_and_its_record_retried() -> None:
    from federator.lookup.budget import BudgetPolicy, LookupBudget, OverBudget
    from federator.names import LOOKUP_RATE_LIMITED
    world = World([endpoint("leeds-cs")])
    world.service.budget = LookupBudget(BudgetPolicy(per_minute=1, refused_per_minute=1),
                                        SharedState(None))
    world.ask()
    world.trail.down_for.add(LOOKUP_RATE_LIMITED)
    with pytest.raises(OverBudget):
        world.ask()  # beyond it: nothing sent, and the trail could not say so
    world.trail.down_for.clear()
    with pytest.raises(OverBudget):
        world.ask()  # so the next attempt records it
    with pytest.raises(OverBudget):
        world.ask()  # and the one after does not
    assert world.trail.events() == [LOOKUP_REQUESTED, LOOKUP_COMPLETED, LOOKUP_RATE_LIMITED]
    assert world.fanout.asked == [["leeds-cs"]]
    # a refused lookup spends the refused budget: one recorded, then 429s
    world.service.refuse(PRACTITIONER, "practitioner", {"purpose": ["short"]}, request())
    with pytest.raises(OverBudget) as refused:
        world.service.refuse(PRACTITIONER, "practitioner", {"purpose": ["short"]}, request())
    assert refused.value.limit.scope == "refused"
    assert world.trail.events()[3:] == [LOOKUP_REFUSED, LOOKUP_RATE_LIMITED]
    # Redis down for a refusal: the refusal is recorded all the same
    world.service.refuse(None, None, reason=STATE_DOWN_REASON)
    assert world.trail.events()[-1] == LOOKUP_REFUSED
