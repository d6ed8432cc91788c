"""Consent policy: check_basis."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from federator.lookup.consent import (
    CONSENT_GIVERS,
    MIN_JUSTIFICATION,
    STATUTORY_POWERS,
    check_basis,
)

TODAY = date(2026, 11, 20)
MAX_AGE = 365


def consent(**over):
    basis = {"type": "consent", "given_by": "parent", "given_on": TODAY,
             "reference": "CASE-123", "covers_sensitive_services": False}
    basis.update(over)
    return basis


def check(basis, *, today=TODAY, max_age=MAX_AGE):
    return check_basis(basis, today=today, consent_max_age_days=max_age)


# -- consent -------------------------------------------------------------------------


@pytest.mark.parametrize("giver", CONSENT_GIVERS)
def test_consent_from_each_allowed_giver_holds(giver):
    assert check(consent(given_by=giver)) == {}


def test_consent_givers_are_exactly_those_in_the_design():
    assert set(CONSENT_GIVERS) == {"child", "parent", "guardian"}


@pytest.mark.parametrize("giver", ["teacher", "Parent", "", None, "grandparent"])
def test_consent_from_anyone_else_is_refused_on_given_by(giver):
    errors = check(consent(given_by=giver))
    assert set(errors) == {"given_by"}


def test_consent_without_given_by_is_refused():
    basis = consent()
    del basis["given_by"]
    assert set(check(basis)) == {"given_by"}


def test_consent_given_today_holds():
    assert check(consent(given_on=TODAY)) == {}


def test_consent_dated_tomorrow_is_refused_as_future():
    errors = check(consent(given_on=TODAY + timedelta(days=1)))
    assert set(errors) == {"given_on"}
    assert "future" in errors["given_on"][0]


def test_consent_exactly_max_age_old_holds():
    assert check(consent(given_on=TODAY - timedelta(days=MAX_AGE))) == {}


def test_consent_one_day_older_than_max_age_is_refused():
    errors = check(consent(given_on=TODAY - timedelta(days=MAX_AGE + 1)))
    assert set(errors) == {"given_on"}
    assert str(MAX_AGE) in errors["given_on"][0]


@pytest.mark.parametrize("max_age", [1, 30, 90, 730])
def test_consent_age_limit_follows_the_configured_value(max_age):
    assert check(consent(given_on=TODAY - timedelta(days=max_age)), max_age=max_age) == {}
    assert set(check(consent(given_on=TODAY - timedelta(days=max_age + 1)),
                     max_age=max_age)) == {"given_on"}


@pytest.mark.parametrize("given_on", [None, "2026-11-20", 20261120])
def test_consent_given_on_must_be_a_date(given_on):
    errors = check(consent(given_on=given_on))
    assert set(errors) == {"given_on"}


def test_consent_without_given_on_is_refused():
    basis = consent()
    del basis["given_on"]
    assert set(check(basis)) == {"given_on"}


@pytest.mark.parametrize("reference", [None, "", "   ", "\t\n"])
def test_consent_without_a_reference_is_refused(reference):
    assert set(check(consent(reference=reference))) == {"reference"}


def test_consent_with_every_field_wrong_reports_every_field():
    errors = check({"type": "consent"})
    assert set(errors) == {"given_by", "given_on", "reference"}
    assert all(isinstance(m, list) and m and all(isinstance(s, str) for s in m)
               for m in errors.values())


# -- safeguarding --------------------------------------------------------------------


def test_safeguarding_with_exactly_the_minimum_justification_holds():
    assert MIN_JUSTIFICATION == 40
    assert check({"type": "safeguarding", "justification": "x" * MIN_JUSTIFICATION}) == {}


def test_safeguarding_one_character_short_is_refused():
    errors = check({"type": "safeguarding", "justification": "x" * (MIN_JUSTIFICATION - 1)})
    assert set(errors) == {"justification"}
    assert str(MIN_JUSTIFICATION) in errors["justification"][0]


def test_safeguarding_justification_is_measured_without_surrounding_space():
    padded = "   " + "x" * (MIN_JUSTIFICATION - 1) + "   "
    assert set(check({"type": "safeguarding", "justification": padded})) == {"justification"}


@pytest.mark.parametrize("justification", [None, "", " " * 60])
def test_safeguarding_without_justification_is_refused(justification):
    assert set(check({"type": "safeguarding", "justification": justification})) == {
        "justification"}


def test_safeguarding_missing_justification_key_is_refused():
    assert set(check({"type": "safeguarding"})) == {"justification"}


# -- statutory -----------------------------------------------------------------------


@pytest.mark.parametrize("power", STATUTORY_POWERS)
def test_each_named_statutory_power_holds(power):
    assert check({"type": "statutory", "power": power, "reference": "ORDER-1"}) == {}


def test_statutory_powers_are_exactly_those_in_the_design():
    assert set(STATUTORY_POWERS) == {
        "children-act-1989-s47", "children-act-1989-s17", "court-order"}


@pytest.mark.parametrize("power", [None, "", "children-act-1989-s46", "COURT-ORDER"])
def test_an_unknown_statutory_power_is_refused(power):
    assert set(check({"type": "statutory", "power": power, "reference": "R"})) == {"power"}


@pytest.mark.parametrize("reference", [None, "", "  "])
def test_statutory_without_reference_is_refused(reference):
    errors = check({"type": "statutory", "power": "court-order", "reference": reference})
    assert set(errors) == {"reference"}


def test_statutory_with_nothing_reports_power_and_reference():
    assert set(check({"type": "statutory"})) == {"power", "reference"}


# -- type ----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", [None, "", "Consent", "legitimate-interest", "vital"])
def test_an_unknown_basis_type_is_refused_on_type(kind):
    errors = check({"type": kind})
    assert set(errors) == {"type"}


def test_a_basis_without_type_is_refused():
    assert set(check({})) == {"type"}
