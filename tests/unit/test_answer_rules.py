"""What the broker does with an authority's answer once parsed (pure): the
outcome says what was left out, the merged list is bounded, and the page shows
each source's contact beside its name."""

from __future__ import annotations

from concurrent.futures import Future

from federator.lookup.fanout import Outcome, _outcome
from federator.lookup.journey import MAX_LISTED, _outcome_kept, answer_of
from federator.lookup.routing import Endpoint
from federator.web.results import results_view

ENDPOINT = Endpoint(id="aaa-attacker", name="Attacker Borough Services", code="E0",
                    coverage=("E0",), protocol="federator-lookup/1", url="http://x",
                    timeout_ms=1000, contact="", status="active")


def done(answer: dict) -> Future:
    future: Future = Future()
    future.set_result(answer)
    return future


def test_the_outcome_says_how_many_professionals_were_left_out_and_why():
    outcome = _outcome(ENDPOINT, done({
        "status": "match", "professionals": [{"name": "A"}],
        "left_out": {"invalid email": 2, "more than 200 in one answer": 24800}}), 0.0)
    assert outcome.dropped == 24802
    assert outcome.detail == ("24802 professionals left out: invalid email (2); "
                              "more than 200 in one answer (24800)")
    assert outcome.public()["detail"] == outcome.detail
    assert _outcome_kept(outcome)["dropped"] == 24802


def test_an_answer_with_nothing_left_out_has_no_detail():
    outcome = _outcome(ENDPOINT, done({"status": "match", "professionals": []}), 0.0)
    assert (outcome.detail, outcome.dropped) == (None, 0)
    assert "dropped" not in _outcome_kept(outcome)


def test_a_partial_answer_is_named_kept_and_shown_beside_its_authority():
    outcome = _outcome(ENDPOINT, done({
        "status": "match", "professionals": [person(1)], "left_out": {"invalid email": 1},
        "partial": {"page_cap": "CareTeam results ran past 10 pages of results: the rest "
                                "were not read"}}), 0.0)
    assert outcome.partial == ("page_cap",)
    assert outcome.detail == ("partial answer: CareTeam results ran past 10 pages of "
                              "results: the rest were not read; 1 professional left out: "
                              "invalid email (1)")
    assert outcome.public()["partial"] == ["page_cap"]
    assert _outcome_kept(outcome)["partial"] == ["page_cap"]
    # the authority answered (complete is about answering); the page says what it
    # could not read under its name
    answer = answer_of("L1", [outcome], {"E0"})
    assert answer["complete"] is True and len(answer["professionals"]) == 1
    [shown] = results_view(answer)["authorities"]
    assert shown["left_out"] == outcome.detail
    whole = _outcome(ENDPOINT, done({"status": "match", "professionals": []}), 0.0)
    assert "partial" not in whole.public() and "partial" not in _outcome_kept(whole)


def person(i: int) -> dict:
    return {"name": f"Person {i:05d}", "phone": "0113 000 0000", "current": True,
            "from": None, "to": None}


def test_the_merged_list_is_cut_at_its_limit_with_a_notice():
    outcomes = [Outcome(f"a{n}", f"A{n}", "match", 1,
                        professionals=[person(n * 200 + i) for i in range(200)])
                for n in range(6)]
    answer = answer_of("L1", outcomes, {"E0"})
    assert len(answer["professionals"]) == MAX_LISTED == 1000
    [cut] = [n for n in answer["notices"] if n["authority"] is None]
    assert "1200 professionals" in cut["text"] and "first 1000" in cut["text"]


def test_a_list_under_the_limit_has_no_notice():
    answer = answer_of("L1", [Outcome("a", "A", "match", 1, professionals=[person(1)])],
                       {"E0"})
    assert answer["notices"] == [] and len(answer["professionals"]) == 1


def test_the_merge_is_told_each_authoritys_registered_name():
    genuine = {"name": "Sam Patel", "organisation": "Leeds City Council",
               "registration_number": "SW1", "phone": "0113 496 0001", "current": True}
    outcomes = [Outcome("aaa-attacker", "Attacker Borough Services", "match", 1,
                        professionals=[{**genuine, "phone": "0800 000 666"}]),
                Outcome("leeds-cs", "Leeds Children's Services", "match", 1,
                        professionals=[genuine])]
    [entry] = answer_of("L1", outcomes, {"E0"})["professionals"]
    assert entry["phone"] == "0113 496 0001"
    assert [c["sources"] for c in entry["contacts"]] == [["leeds-cs"], ["aaa-attacker"]]


def test_the_page_shows_each_contact_beside_the_authorities_that_gave_it():
    view = results_view({"authorities": [
        {"id": "aaa-attacker", "name": "Attacker Borough Services", "outcome": "match"},
        {"id": "leeds-cs", "name": "Leeds Children's Services", "outcome": "match"}],
        "professionals": [{
            "name": "Sam Patel", "current": True, "phone": "0113 496 0001",
            "email": "sam@leeds.gov.uk", "sources": ["aaa-attacker", "leeds-cs"],
            "contacts": [
                {"phone": "0113 496 0001", "email": "sam@leeds.gov.uk",
                 "sources": ["leeds-cs"]},
                {"phone": "0800 000 666", "email": "a@x.invalid?bcc=b@evil.example",
                 "sources": ["aaa-attacker"]}]}]})
    [card] = view["current"]
    assert [(c["phone"], c["source_names"], c["mailto"]) for c in card["contact_lines"]] == [
        ("0113 496 0001", ["Leeds Children's Services"], True),
        ("0800 000 666", ["Attacker Borough Services"], False)]


def test_an_answer_without_contacts_shows_its_one_contact():
    view = results_view({"authorities": [], "professionals": [
        {"name": "Jo", "current": True, "phone": "1", "email": None, "sources": ["a"]}]})
    assert view["current"][0]["contact_lines"] == [
        {"phone": "1", "email": None, "mailto": False, "source_names": ["a"]}]


def test_the_broker_builds_its_clients_with_the_professionals_cap():
    from adapters.fhir_r4 import FhirR4Client
    from adapters.lookup_v1 import LookupV1Client
    from adapters.plugins import ClientContext, build_client

    context = ClientContext(sign=lambda body, audience: "t", max_professionals=7)
    lookup = build_client(LookupV1Client, context)
    fhir = build_client(FhirR4Client, context)
    assert (lookup.max_professionals, fhir.max_professionals) == (7, 7)
    assert lookup.aio.max_header_bytes == lookup.max_header_bytes == 16384
