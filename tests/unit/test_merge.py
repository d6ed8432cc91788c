"""Merging professionals across authorities: identity, merge and ordering."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from federator.lookup.merge import FIELDS, identity, merge, same_organisation


def person(name="Sam Patel", *, role="Social worker", organisation="Leeds City Council",
           current=True, from_="2025-09-01", to=None, **extra):
    return {"name": name, "role": role, "service": "children's social care",
            "organisation": organisation, "team": None, "phone": "0113 000 0000",
            "email": None, "current": current, "from": from_, "to": to, **extra}


# -- identity ------------------------------------------------------------------------


def test_identity_prefers_the_registration_number():
    a = person("Sam Patel", registration_number="SW123456")
    b = person("Samuel Patel", organisation="Bradford", role="Nurse",
               registration_number="SW123456")
    assert identity(a) == identity(b) == ("reg", "SW123456")


def test_identity_normalises_registration_number_case_and_spaces():
    assert identity(person(registration_number=" sw 123 456 ")) == ("reg", "SW123456")


def test_different_registration_numbers_are_different_people():
    assert identity(person(registration_number="SW1")) != identity(
        person(registration_number="SW2"))


def test_blank_registration_number_falls_back_to_name_organisation_role():
    for blank in (None, "", "   "):
        assert identity(person(registration_number=blank))[0] == "nor"
    assert identity(person(registration_number=None)) == identity(person())


def test_identity_normalises_case_accents_punctuation_and_spacing():
    a = person("Zoë  O'Brien", organisation="Leeds City Council", role="Social Worker")
    b = person("zoe o brien", organisation="LEEDS CITY COUNCIL ", role="social-worker")
    assert identity(a) == identity(b)


def test_identity_separates_same_name_in_another_organisation_or_role():
    base = identity(person())
    assert identity(person(organisation="Bradford Council")) != base
    assert identity(person(role="Health visitor")) != base
    assert identity(person("Sam Patil")) != base


def test_identity_ignores_contact_and_dates():
    assert identity(person()) == identity(
        {**person(), "phone": "999", "email": "x@y", "from": "2001-01-01", "current": False})


# -- merge: examples -----------------------------------------------------------------


def test_same_professional_from_two_authorities_is_listed_once_with_both_sources():
    out = merge([("leeds-cs", [person()]), ("bradford-cs", [person("SAM PATEL")])])
    assert len(out) == 1
    assert out[0]["sources"] == ["bradford-cs", "leeds-cs"]


def test_same_registration_number_merges_despite_different_names():
    out = merge([("a", [person("Sam Patel", registration_number="X1")]),
                 ("b", [person("S. Patel", organisation="Other", registration_number="x1")])])
    assert len(out) == 1
    assert out[0]["sources"] == ["a", "b"]


def test_different_people_are_kept_apart():
    out = merge([("a", [person("Sam Patel"), person("Jo Bloggs")])])
    assert sorted(e["name"] for e in out) == ["Jo Bloggs", "Sam Patel"]
    assert all(e["sources"] == ["a"] for e in out)


def test_a_source_is_listed_once_even_if_it_reports_the_person_twice():
    out = merge([("a", [person(), person()])])
    assert len(out) == 1 and out[0]["sources"] == ["a"]


def test_output_has_the_response_fields_and_no_others():
    out = merge([("a", [person(registration_number="R1", secret="case notes")])])
    assert set(out[0]) == {*FIELDS, "current", "from", "to", "sources", "contacts"}


def test_missing_details_are_filled_from_the_other_report_but_contact_stays_with_its_source():
    out = merge([("a", [{**person(), "phone": None, "email": "sam@example.gov.uk"}]),
                 ("b", [{**person(), "phone": "0113", "team": "West", "email": None}])])
    assert out[0]["team"] == "West"
    # one source's phone is never shown as another's: each contact beside its sources,
    # and with nothing to say whose organisation she is, no contact is the top line
    assert (out[0]["phone"], out[0]["email"]) == (None, None)
    assert out[0]["contacts"] == [
        {"phone": None, "email": "sam@example.gov.uk", "sources": ["a"]},
        {"phone": "0113", "email": None, "sources": ["b"]}]


def test_merged_entry_is_current_if_any_report_is_current():
    out = merge([("a", [person(current=False, to="2024-01-01")]),
                 ("b", [person(current=True, from_="2025-01-01")])])
    assert out[0]["current"] is True
    assert out[0]["to"] is None


def test_merged_entry_starts_at_the_earliest_from():
    out = merge([("a", [person(from_="2025-01-01")]), ("b", [person(from_="2023-06-01")])])
    assert out[0]["from"] == "2023-06-01"


def test_merged_past_entry_ends_at_the_latest_to():
    out = merge([("a", [person(current=False, to="2023-01-01")]),
                 ("b", [person(current=False, to="2024-05-01")])])
    assert out[0]["current"] is False
    assert out[0]["to"] == "2024-05-01"


def test_current_before_past_then_most_recent_first():
    out = merge([("a", [
        person("Past Old", current=False, from_="2018-01-01", to="2019-01-01"),
        person("Current Old", from_="2020-01-01"),
        person("Past New", current=False, from_="2018-01-01", to="2024-01-01"),
        person("Current New", from_="2025-09-01"),
        person("Past Undated", current=False, from_=None, to=None),
        person("Current Undated", from_=None),
    ])])
    assert [e["name"] for e in out] == [
        "Current New", "Current Old", "Current Undated",
        "Past New", "Past Old", "Past Undated"]


def test_current_entries_are_ordered_by_start_past_entries_by_end():
    out = merge([("a", [
        person("Ended late", current=False, from_="2010-01-01", to="2024-12-01"),
        person("Ended early", current=False, from_="2023-01-01", to="2023-06-01"),
    ])])
    assert [e["name"] for e in out] == ["Ended late", "Ended early"]


def test_merge_of_nothing_is_empty():
    assert merge([]) == []
    assert merge([("a", []), ("b", [])]) == []


def test_merge_does_not_modify_its_input():
    report = [person(phone=None)]
    snapshot = [dict(p) for p in report]
    merge([("a", report), ("b", [person()])])
    assert report == snapshot


# -- merge: properties ---------------------------------------------------------------

NAMES = ["Sam Patel", "sam  patel", "Zoë Okafor", "Zoe Okafor", "Jo Bloggs"]
ORGS = ["Leeds City Council", "leeds city council", "Bradford Council"]
ROLES = ["Social worker", "Health visitor"]
DATES = [None, "2019-03-01", "2021-07-15", "2024-01-31", "2025-09-01"]

people = st.builds(
    lambda name, org, role, reg, current, start, end, phone, email, team: {
        "name": name, "organisation": org, "role": role, "registration_number": reg,
        "service": "svc", "team": team, "phone": phone, "email": email,
        "current": current, "from": start, "to": None if current else end},
    st.sampled_from(NAMES), st.sampled_from(ORGS), st.sampled_from(ROLES),
    st.sampled_from([None, None, "SW1", "sw 1", "SW2"]), st.booleans(),
    st.sampled_from(DATES), st.sampled_from(DATES),
    st.sampled_from([None, "0113 000 0000", "01274 111 111"]),
    st.sampled_from([None, "a@example.gov.uk", "b@example.gov.uk"]),
    st.sampled_from([None, "West", "East"]),
)
reports = st.lists(
    st.tuples(st.sampled_from(["leeds-cs", "bradford-cs", "york-health", "nhs", "kirklees"]),
              st.lists(people, max_size=5)),
    max_size=5, unique_by=lambda r: r[0])


@settings(max_examples=200)
@given(reports, st.randoms(use_true_random=False))
def test_merge_does_not_depend_on_the_order_of_reports(given_reports, rnd):
    shuffled = list(given_reports)
    rnd.shuffle(shuffled)
    assert merge(shuffled) == merge(given_reports)


def test_merge_does_not_depend_on_the_order_of_reports_for_conflicting_details():
    a = ("a", [{**person(), "phone": "1111", "team": "A team"}])
    b = ("b", [{**person(), "phone": "2222", "team": "B team"}])
    assert merge([a, b]) == merge([b, a])


def test_merge_order_is_total_for_namesakes_in_other_organisations():
    a = ("a", [person("Sam Patel", organisation="Leeds")])
    b = ("b", [person("Sam Patel", organisation="Bradford")])
    results = {repr(merge(list(p))) for p in itertools.permutations([a, b])}
    assert len(results) == 1


@given(reports)
def test_merge_never_loses_a_source(given_reports):
    out = merge(given_reports)
    for source, people_ in given_reports:
        for p in people_:
            holders = [e for e in out if source in e["sources"]]
            assert holders, (source, p)
    wanted = {s for s, ps in given_reports if ps}
    assert {s for e in out for s in e["sources"]} == wanted


@given(reports)
def test_each_reported_person_is_credited_to_its_source(given_reports):
    out = merge(given_reports)
    by_identity: dict[tuple[str, ...], set[str]] = {}
    for source, people_ in given_reports:
        for p in people_:
            by_identity.setdefault(identity(p), set()).add(source)
    assert sorted(sorted(s) for s in by_identity.values()) == sorted(
        e["sources"] for e in out)


@given(reports)
def test_every_entry_has_at_least_one_source_listed_once(given_reports):
    for entry in merge(given_reports):
        assert len(entry["sources"]) >= 1
        assert len(set(entry["sources"])) == len(entry["sources"])
        assert entry["sources"] == sorted(entry["sources"])


@given(reports)
def test_current_entries_precede_past_ones(given_reports):
    flags = [e["current"] for e in merge(given_reports)]
    assert flags == sorted(flags, reverse=True)


@given(reports)
def test_within_current_and_past_most_recent_comes_first(given_reports):
    out = merge(given_reports)
    for current, key in ((True, "from"), (False, "to")):
        dates = [e[key] for e in out if e["current"] is current]
        dated = [d for d in dates if d]
        assert dated == sorted(dated, reverse=True)
        assert dates == dated + [None] * (len(dates) - len(dated))


@given(reports)
def test_number_of_entries_equals_number_of_distinct_identities(given_reports):
    distinct = {identity(p) for _, ps in given_reports for p in ps}
    assert len(merge(given_reports)) == len(distinct)


@given(reports)
def test_merge_is_idempotent_when_a_report_is_repeated(given_reports):
    assert merge(given_reports + given_reports) == merge(given_reports)


@given(reports)
def test_current_entry_has_no_end_and_a_past_entry_is_not_current(given_reports):
    for entry in merge(given_reports):
        assert isinstance(entry["current"], bool)
        if entry["current"]:
            assert entry["to"] is None


# -- no contact hijack ---------------------------------------------------------------

NAMES_OF = {"aaa-attacker": "Attacker Borough Services", "leeds-cs": "Leeds Children's Services",
            "yorkshire-health": "Yorkshire Community Health"}
GENUINE = person(registration_number="SW123456", phone="0113 496 0001",
                 email="sam.patel@leeds.gov.uk")
HIJACK = {**GENUINE, "phone": "0800 000 666", "email": "sam@evil.example"}


def test_an_authority_sorting_first_cannot_replace_a_real_professionals_contact():
    [entry] = merge([("aaa-attacker", [HIJACK]), ("leeds-cs", [GENUINE])], NAMES_OF)
    assert (entry["phone"], entry["email"]) == ("0113 496 0001", "sam.patel@leeds.gov.uk")
    assert entry["contacts"] == [
        {"phone": "0113 496 0001", "email": "sam.patel@leeds.gov.uk", "sources": ["leeds-cs"]},
        {"phone": "0800 000 666", "email": "sam@evil.example", "sources": ["aaa-attacker"]}]
    assert entry["sources"] == ["aaa-attacker", "leeds-cs"]


def test_an_authority_naming_itself_the_organisation_gets_no_top_line():
    # its word for itself does not count: nobody else says Sam is the attacker's
    own = {**HIJACK, "organisation": "Attacker Borough Services"}
    [entry] = merge([("aaa-attacker", [own]), ("leeds-cs", [GENUINE])], NAMES_OF)
    assert (entry["phone"], entry["email"]) == (None, None)
    assert {c["phone"]: c["sources"] for c in entry["contacts"]} == {
        "0800 000 666": ["aaa-attacker"], "0113 496 0001": ["leeds-cs"]}


def test_repeating_a_report_is_not_more_votes():
    own = {**HIJACK, "organisation": "Attacker Borough Services"}
    [entry] = merge([("aaa-attacker", [own, own, {**own, "role": "Other"}]),
                     ("leeds-cs", [GENUINE])], NAMES_OF)
    assert (entry["phone"], entry["email"]) == (None, None)


def test_the_hijacker_cannot_fill_the_genuine_sources_details_first():
    [entry] = merge([("aaa-attacker", [{**HIJACK, "name": "Evil Name", "team": "Evil"}]),
                     ("leeds-cs", [{**GENUINE, "team": None}])], NAMES_OF)
    assert entry["name"] == "Sam Patel"
    assert entry["team"] == "Evil"  # a blank only: shown as one detail, contact kept apart


def test_the_professionals_own_organisation_is_preferred_whoever_sorts_first():
    nurse = person("Ann Lee", organisation="Yorkshire Community Health NHS Trust",
                   role="School nurse", registration_number="NMC1", phone="01632 960 111")
    council_copy = {**nurse, "phone": "0113 496 0999"}  # the council's note of her number
    [entry] = merge([("leeds-cs", [council_copy]), ("yorkshire-health", [nurse])], NAMES_OF)
    assert [c["sources"] for c in entry["contacts"]] == [["yorkshire-health"], ["leeds-cs"]]
    assert entry["phone"] == "01632 960 111"


def test_sources_that_agree_on_contact_share_one_line():
    [entry] = merge([("leeds-cs", [GENUINE]),
                     ("yorkshire-health", [{**GENUINE, "phone": "0113-496-0001",
                                            "email": "Sam.Patel@leeds.gov.uk"}])], NAMES_OF)
    assert entry["contacts"] == [{"phone": "0113 496 0001", "email": "sam.patel@leeds.gov.uk",
                                  "sources": ["leeds-cs", "yorkshire-health"]}]


def test_without_names_sources_are_preferred_in_order_of_id():
    [entry] = merge([("b", [{**GENUINE, "phone": "2"}]), ("a", [{**GENUINE, "phone": "1"}])])
    assert [c["phone"] for c in entry["contacts"]] == ["1", "2"]


@pytest.mark.parametrize("source, organisation, same", [
    ("Leeds Children's Services", "Leeds City Council", True),
    ("Bradford Children's Services", "City of Bradford Metropolitan District Council", True),
    ("Yorkshire Community Health", "Yorkshire Community Health NHS Trust", True),
    ("North Yorkshire Children's Services", "North Yorkshire Council", True),
    ("North Yorkshire Children's Services", "Yorkshire Community Health NHS Trust", False),
    ("Attacker Borough Services", "Leeds City Council", False),
    ("Leeds Children's Services", "", False),
    ("City Council", "City Council", False),  # nothing distinctive: not a claim
])
def test_same_organisation(source, organisation, same):
    assert same_organisation(source, organisation) is same


@given(reports)
def test_each_contact_is_credited_only_to_sources_that_gave_it(given_reports):
    given_pairs = {(s, identity(p), p.get("phone"), p.get("email"))
                   for s, ps in given_reports for p in ps if p.get("phone") or p.get("email")}
    shown = {(s, c["phone"], c["email"]) for e in merge(given_reports)
             for c in e["contacts"] for s in c["sources"]}
    assert shown == {(s, phone, email) for s, _, phone, email in given_pairs}
    for entry in merge(given_reports):  # an entry's top line is its first contact, or none
        assert (entry["phone"], entry["email"]) in (
            (None, None), *((c["phone"], c["email"]) for c in entry["contacts"][:1]))
        if len(entry["contacts"]) == 1:
            assert (entry["phone"], entry["email"]) == (
                entry["contacts"][0]["phone"], entry["contacts"][0]["email"])
