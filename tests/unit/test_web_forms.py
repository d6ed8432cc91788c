"""The pure parts of the web pages: form -> API payload, API errors -> form
fields, the results view, and the recent-lookups summary."""

from __future__ import annotations

from datetime import date

from federator.web.blueprint import NavEntry, nav_for
from federator.web.forms import form_errors, payload_from_form
from federator.web.recent import outcome_words, summarise
from federator.web.results import involvement, results_view


def test_payload_from_form_has_the_api_shape() -> None:
    payload = payload_from_form({
        "nhs_number": " 943 476 5919 ", "given_name": "", "family_name": "",
        "date_of_birth": None, "postcode": "ls6 2ab", "previous_postcodes": "BD1 1AA\n\n",
        "areas": "e08000035, E08000032", "purpose": " Section 17 assessment ",
        "basis_type": "consent", "given_by": "parent", "given_on": date(2026, 11, 20),
        "consent_reference": "CASE-1", "covers_sensitive_services": False,
        "justification": "ignored", "include_past": True})
    assert payload == {
        "child": {"nhs_number": "943 476 5919", "given_name": None, "family_name": None,
                  "date_of_birth": None, "postcodes": ["ls6 2ab", "BD1 1AA"]},
        "areas": ["E08000035", "E08000032"], "purpose": "Section 17 assessment",
        "basis": {"type": "consent", "given_by": "parent", "given_on": "2026-11-20",
                  "reference": "CASE-1", "covers_sensitive_services": False},
        "include_past": True}


def test_empty_basis_answers_are_left_out_so_the_schema_names_them() -> None:
    payload = payload_from_form({"basis_type": "statutory", "power": "",
                                 "statutory_reference": ""})
    assert payload["basis"] == {"type": "statutory"}


def test_errors_land_on_the_fields_that_caused_them() -> None:
    placed = form_errors({
        "child": {"nhs_number": ["bad check digit"], "postcodes": {"0": ["bad"], "2": ["bad2"]}},
        "basis": {"reference": ["Required"], "given_on": ["future"]},
        "purpose": ["too short"], "deadline_ms": ["too long"]}, "statutory")
    assert placed == {"nhs_number": ["bad check digit"], "postcode": ["bad"],
                      "previous_postcodes": ["bad2"], "statutory_reference": ["Required"],
                      "given_on": ["future"], "purpose": ["too short"],
                      "form": ["too long"]}
    assert form_errors({"basis": {"reference": ["x"]}}, "consent") == {
        "consent_reference": ["x"]}


def test_results_view_separates_past_and_names_who_did_not_answer() -> None:
    view = results_view({
        "lookup_id": "L1", "complete": False,
        "authorities": [{"id": "a", "name": "Leeds", "outcome": "match"},
                        {"id": "b", "name": "Bradford", "outcome": "timeout"},
                        {"id": "c", "name": "York", "outcome": "no_match"}],
        "professionals": [
            {"name": "Sam", "current": True, "from": "2025-09-01", "sources": ["a"]},
            {"name": "Jo", "current": False, "from": "2020-01-02", "to": "2021-03-04",
             "sources": ["a", "c"]}],
        "notices": [{"authority": "a", "text": "Ring first"}]})
    assert [m["name"] for m in view["missing"]] == ["Bradford"]
    assert [p["name"] for p in view["current"]] == ["Sam"]
    assert view["past"][0]["involvement"] == "2 January 2020 to 4 March 2021"
    assert view["past"][0]["source_names"] == ["Leeds", "York"]
    assert view["notices"] == [{"authority": "Leeds", "text": "Ring first"}]
    assert involvement({"current": True, "from": "2025-09-01"}) == "Current, since 1 September 2025"


def test_recent_lookups_pair_requests_with_completions_newest_first() -> None:
    items = summarise([
        {"event": "lookup.requested", "lookup_id": "1", "at": "2026-01-01T10:00",
         "purpose": "p1", "basis_type": "consent", "authorities": ["a", "b"]},
        {"event": "lookup.requested", "lookup_id": "2", "at": "2026-01-02T10:00",
         "purpose": "p2", "basis_type": "safeguarding", "authorities": ["a"]},
        {"event": "lookup.completed", "lookup_id": "1", "complete": False,
         "outcomes": [{"id": "a", "outcome": "match"}, {"id": "b", "outcome": "error"}]},
    ])
    assert [i.lookup_id for i in items] == ["2", "1"]
    assert items[0].complete is None
    assert items[1].outcomes == {"match": 1, "error": 1} and items[1].complete is False
    assert outcome_words(items[1].outcomes) == ["1 knew the child", "1 could not be reached"]


def test_recent_lookups_carry_what_tells_two_apart() -> None:
    [retry, first] = summarise([
        {"event": "lookup.requested", "lookup_id": "1", "at": "2026-01-01T10:00",
         "purpose": "p", "basis_type": "consent", "authorities": ["a", "b"],
         "basis": {"type": "consent", "reference": "CASE-12"}, "areas": ["E1", "E2"]},
        {"event": "lookup.completed", "lookup_id": "1", "complete": False,
         "outcomes": [{"id": "a", "outcome": "match"}, {"id": "b", "outcome": "timeout"}]},
        {"event": "lookup.requested", "lookup_id": "2", "at": "2026-01-01T10:05",
         "purpose": "p", "basis_type": "consent", "authorities": ["b"], "follows": "1",
         "basis": "not a mapping", "areas": ["E2"]},
    ])
    assert (first.reference, first.areas, first.matched, first.follows) == (
        "CASE-12", ["E1", "E2"], ["a"], None)
    assert (retry.reference, retry.areas, retry.matched, retry.follows) == ("", ["E2"], [], "1")


def test_a_lookup_cut_off_by_a_crash_shows_as_cut_off_not_unfinished() -> None:
    requested = {"event": "lookup.requested", "lookup_id": "1", "at": "2026-01-01T10:00",
                 "purpose": "p", "basis_type": "consent", "authorities": ["a"]}
    [item] = summarise([requested, {"event": "lookup.interrupted", "lookup_id": "1"}])
    assert item.interrupted and item.complete is False
    late = {"event": "lookup.completed", "lookup_id": "1", "complete": True, "outcomes": []}
    [item] = summarise([requested, late, {"event": "lookup.interrupted", "lookup_id": "1"}])
    assert not item.interrupted and item.complete is True  # a completion, if any, wins


def test_navigation_shows_only_existing_pages_for_the_roles_held() -> None:
    entries = [NavEntry("a.x", "X", ("practitioner",)), NavEntry("b.y", "Y", ("auditor",)),
               NavEntry("c.z", "Z", ("auditor",))]
    nav = nav_for(["auditor"], ["a.x", "b.y"], entries, "b.y")
    assert nav == [{"endpoint": "b.y", "text": "Y", "active": True}]
