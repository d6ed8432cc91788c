from __future__ import annotations

from datetime import date

import pytest

from adapters.kit.policy import (
    DEFAULT_SHIELD_NOTICE,
    apply_policy,
    basis_allows_sensitive,
    professional_fields,
)

TODAY = date(2026, 11, 25)

BASES = {
    "consent-covering": ({"type": "consent", "given_by": "parent", "given_on": "2026-11-20",
                          "reference": "C-1", "covers_sensitive_services": True}, True),
    "consent-not-covering": ({"type": "consent", "given_by": "parent",
                              "given_on": "2026-11-20", "reference": "C-1",
                              "covers_sensitive_services": False}, False),
    "consent-unsaid": ({"type": "consent", "given_by": "child"}, False),
    "consent-truthy-string": ({"type": "consent", "covers_sensitive_services": "yes"}, False),
    "safeguarding": ({"type": "safeguarding", "justification": "x" * 40}, True),
    "s47": ({"type": "statutory", "power": "children-act-1989-s47", "reference": "R"}, True),
    "court-order": ({"type": "statutory", "power": "court-order", "reference": "R"}, True),
    "s17": ({"type": "statutory", "power": "children-act-1989-s17", "reference": "R"}, False),
    "statutory-no-power": ({"type": "statutory", "reference": "R"}, False),
}


@pytest.fixture
def record(make_record, make_involvement):
    return make_record(involvements=[
        make_involvement(professional_name="Sam Patel", sensitive=False),
        make_involvement(professional_name="Jo Reed", role="Nurse", service="sexual health",
                         sensitive=True),
        make_involvement(professional_name="Lee Past", from_=date(2020, 1, 1),
                         to=date(2024, 6, 30)),
        make_involvement(professional_name="Kim Past Sensitive", service="substance misuse",
                         sensitive=True, from_=date(2021, 1, 1), to=date(2023, 1, 1)),
    ])


@pytest.mark.parametrize("name", sorted(BASES))
def test_sensitive_services_only_when_the_basis_allows(name, record):
    basis, allowed = BASES[name]
    assert basis_allows_sensitive(basis) is allowed
    outcome = apply_policy(record, basis, include_past=False, today=TODAY)
    names = {p["name"] for p in outcome.professionals}
    assert outcome.status == "match"
    assert "Sam Patel" in names
    assert ("Jo Reed" in names) is allowed


@pytest.mark.parametrize("name", sorted(BASES))
def test_past_sensitive_follows_both_rules(name, record):
    basis, allowed = BASES[name]
    outcome = apply_policy(record, basis, include_past=True, today=TODAY)
    names = {p["name"] for p in outcome.professionals}
    assert "Lee Past" in names
    assert ("Kim Past Sensitive" in names) is allowed


def test_past_involvements_only_when_include_past(record):
    basis = BASES["safeguarding"][0]
    without = apply_policy(record, basis, include_past=False, today=TODAY)
    with_past = apply_policy(record, basis, include_past=True, today=TODAY)
    assert {p["name"] for p in without.professionals} == {"Sam Patel", "Jo Reed"}
    assert {p["name"] for p in with_past.professionals} == {
        "Sam Patel", "Jo Reed", "Lee Past", "Kim Past Sensitive"}
    assert all(p["current"] for p in without.professionals)


def test_involvement_ending_today_is_still_current(make_record, make_involvement):
    rec = make_record(involvements=[make_involvement(to=TODAY)])
    outcome = apply_policy(rec, BASES["s47"][0], include_past=False, today=TODAY)
    assert [p["current"] for p in outcome.professionals] == [True]


def test_current_first_then_most_recent(record):
    outcome = apply_policy(record, BASES["safeguarding"][0], include_past=True, today=TODAY)
    current = [p["current"] for p in outcome.professionals]
    assert current == sorted(current, reverse=True)
    past = [p["name"] for p in outcome.professionals if not p["current"]]
    assert past == ["Lee Past", "Kim Past Sensitive"]


def test_shielded_child_gets_notice_and_no_professionals(make_record, make_involvement):
    rec = make_record(shielded=True, shield_notice="Call the duty manager on 01632 960999",
                      involvements=[make_involvement()])
    outcome = apply_policy(rec, BASES["safeguarding"][0], include_past=True, today=TODAY)
    assert outcome.status == "match"
    assert outcome.professionals == []
    assert outcome.notice == "Call the duty manager on 01632 960999"


def test_shielded_child_without_notice_gets_the_default(make_record, make_involvement):
    rec = make_record(shielded=True, involvements=[make_involvement()])
    outcome = apply_policy(rec, BASES["s47"][0], include_past=False, today=TODAY,
                           authority="Example Council")
    assert outcome.professionals == []
    assert outcome.notice == DEFAULT_SHIELD_NOTICE.format(authority="Example Council")
    assert "front door" in outcome.notice


def test_unknown_basis_is_declined(record):
    outcome = apply_policy(record, {"type": "curiosity"}, include_past=True, today=TODAY)
    assert outcome.status == "declined"
    assert outcome.professionals == []


def test_professional_wire_fields(make_involvement):
    fields = professional_fields(
        make_involvement(from_=date(2025, 9, 1), to=date(2026, 1, 31)), TODAY)
    assert fields == {
        "name": "Sam Patel", "role": "Social worker", "service": "children's social care",
        "organisation": "Example City Council", "team": "West Assessment Team",
        "phone": "01632 960001", "email": "sam.patel@example.invalid",
        "registration_number": "SW123456", "current": False,
        "from": "2025-09-01", "to": "2026-01-31",
    }


# -- sensitive involvement stays unseen ---------------------------------------------------


def test_a_child_known_only_through_withheld_services_is_unseen(make_record, make_involvement):
    rec = make_record(involvements=[
        make_involvement(professional_name="Jo Reed", service="sexual health", sensitive=True),
        make_involvement(professional_name="Kim Past", service="mental health", sensitive=True,
                         from_=date(2021, 1, 1), to=date(2023, 1, 1))])
    hidden = apply_policy(rec, BASES["s17"][0], include_past=True, today=TODAY)
    assert hidden.unseen and hidden.professionals == []
    assert [i.professional_name for i in hidden.withheld] == ["Jo Reed", "Kim Past"]
    shown = apply_policy(rec, BASES["s47"][0], include_past=True, today=TODAY)
    assert not shown.unseen and shown.withheld == ()
    assert {p["name"] for p in shown.professionals} == {"Jo Reed", "Kim Past"}


def test_a_child_also_known_otherwise_is_not_unseen(record):
    """Known through a service that may be shown (even a past one not asked for): the
    answer is the one it would be without the sensitive service at all."""
    outcome = apply_policy(record, BASES["s17"][0], include_past=False, today=TODAY)
    assert not outcome.unseen
    assert {i.professional_name for i in outcome.withheld} == {"Jo Reed", "Kim Past Sensitive"}


def test_a_shielded_child_is_shielded_not_unseen(make_record, make_involvement):
    rec = make_record(shielded=True, involvements=[make_involvement(sensitive=True)])
    outcome = apply_policy(rec, BASES["s17"][0], include_past=True, today=TODAY)
    assert not outcome.unseen and outcome.notice
