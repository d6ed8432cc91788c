"""LookupRequestSchema: the request contract of POST /api/v1/lookups."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from marshmallow import ValidationError

from federator.lookup.schemas import LookupRequestSchema

VALID_NHS = "9434765919"


def mod11_check_digit(nine: str) -> int | None:
    """Independent NHS Modulus 11: weights 10..2; 11 -> 0; 10 -> no valid number."""
    total = sum(int(d) * w for d, w in zip(nine, range(10, 1, -1), strict=True))
    check = 11 - total % 11
    return {11: 0, 10: None}.get(check, check)


def request(**over):
    body = {
        "child": {"nhs_number": VALID_NHS, "given_name": "Amara", "family_name": "Okafor",
                  "date_of_birth": "2015-03-02", "postcodes": ["LS6 2AB", "BD1 1AA"]},
        "areas": ["E08000035"],
        "purpose": "Assessment under section 17: finding services already involved",
        "basis": {"type": "consent", "given_by": "parent", "given_on": "2026-11-20",
                  "reference": "CASE-123", "covers_sensitive_services": False},
        "include_past": True,
        "deadline_ms": 5000,
    }
    body.update(over)
    return body


def child(**over):
    return request(child={**request()["child"], **over})


def errors_of(body):
    with pytest.raises(ValidationError) as info:
        LookupRequestSchema().load(body)
    return info.value.messages


def load(body):
    return LookupRequestSchema().load(body)


# -- the whole request -----------------------------------------------------------------


def test_the_design_example_loads():
    data = load(request())
    assert data["child"]["nhs_number"] == VALID_NHS
    assert data["child"]["date_of_birth"] == date(2015, 3, 2)
    assert data["basis"]["given_on"] == date(2026, 11, 20)
    assert data["areas"] == ["E08000035"]
    assert data["include_past"] is True
    assert data["deadline_ms"] == 5000
    assert data["scope"] == "targeted"


def test_defaults_for_optional_fields():
    data = load({"child": {"nhs_number": VALID_NHS}, "purpose": "A purpose long enough",
                 "basis": {"type": "safeguarding", "justification": "x" * 40}})
    assert data["areas"] == []
    assert data["scope"] == "targeted"
    assert data["include_past"] is False
    assert data["deadline_ms"] is None
    assert data["child"]["postcodes"] == []
    assert data["basis"] == {"type": "safeguarding", "justification": "x" * 40}


def test_consent_covers_sensitive_services_defaults_to_false():
    basis = load(request())["basis"]
    assert basis["covers_sensitive_services"] is False


@pytest.mark.parametrize(("basis", "stray"), [
    ({"type": "safeguarding", "justification": "x" * 40, "given_by": "parent"}, "given_by"),
    ({"type": "statutory", "power": "court-order", "reference": "R", "justification": "x"},
     "justification"),
    ({"type": "consent", "given_by": "parent", "given_on": "2026-11-20", "reference": "C",
      "power": "court-order"}, "power"),
])
def test_fields_of_another_basis_type_are_refused(basis, stray):
    assert errors_of(request(basis=basis))["basis"] == {
        stray: [f"Not used for a {basis['type']} basis."]}


@pytest.mark.parametrize("missing", ["child", "purpose", "basis"])
def test_required_top_level_fields(missing):
    body = request()
    del body[missing]
    assert missing in errors_of(body)


def test_every_bad_field_is_reported_at_once():
    messages = errors_of(request(purpose="short", areas=["nope"], scope="everyone",
                                 deadline_ms=5, child={"nhs_number": "123"}))
    assert {"purpose", "areas", "scope", "deadline_ms", "child"} <= set(messages)


@pytest.mark.parametrize(("where", "extra"), [
    ("top", {"debug": True}),
    ("child", {"address": "1 High Street"}),
    ("basis", {"signed_by": "someone"}),
])
def test_unknown_fields_are_refused_at_every_level(where, extra):
    body = request()
    if where == "top":
        body.update(extra)
        assert errors_of(body) == {"debug": ["Unknown field."]}
    else:
        body[where] = {**body[where], **extra}
        assert errors_of(body) == {where: {next(iter(extra)): ["Unknown field."]}}


# -- child: NHS number -----------------------------------------------------------------


@pytest.mark.parametrize("written", ["9434765919", "943 476 5919", " 943-476-5919 ",
                                     "943\t476\t5919"])
def test_nhs_number_is_tidied_to_ten_digits(written):
    assert load(child(nhs_number=written))["child"]["nhs_number"] == VALID_NHS


def test_nhs_number_with_wrong_check_digit_is_refused():
    messages = errors_of(child(nhs_number="9434765918"))
    assert "check digit" in messages["child"]["nhs_number"][0]


@pytest.mark.parametrize("bad", ["943476591", "94347659190", "94347659AB", "+434765919",
                                 "9434765919.0"])
def test_nhs_number_must_be_ten_digits(bad):
    messages = errors_of(child(nhs_number=bad))
    assert messages["child"]["nhs_number"] == ["An NHS number is 10 digits."]


def test_nhs_number_must_be_a_string():
    assert "nhs_number" in errors_of(child(nhs_number=9434765919))["child"]


@given(st.from_regex(r"\A[4-9][0-9]{8}\Z"), st.integers(0, 9))
def test_nhs_number_modulus_11(nine, last):
    # Outside the Scottish CHI range, whose first six digits must also be a date.
    expected = mod11_check_digit(nine)
    body = child(nhs_number=f"{nine}{last}")
    if expected == last:
        assert load(body)["child"]["nhs_number"] == f"{nine}{last}"
    else:
        assert "nhs_number" in errors_of(body)["child"]


# -- child: identity rule --------------------------------------------------------------


def test_nhs_number_alone_is_enough():
    data = load(request(child={"nhs_number": VALID_NHS}))
    assert data["child"]["given_name"] is None


def test_name_and_date_of_birth_without_nhs_number_are_enough():
    data = load(request(child={"given_name": "Amara", "family_name": "Okafor",
                               "date_of_birth": "2015-03-02"}))
    assert data["child"]["nhs_number"] is None


@pytest.mark.parametrize("missing", ["given_name", "family_name", "date_of_birth"])
def test_without_nhs_number_each_identity_field_is_needed(missing):
    person = {"given_name": "Amara", "family_name": "Okafor", "date_of_birth": "2015-03-02"}
    del person[missing]
    assert errors_of(request(child=person)) == {
        "child": {missing: ["Give this, or the child's NHS number."]}}


@pytest.mark.parametrize("blank", [None, "", "   "])
def test_blank_nhs_number_counts_as_absent(blank):
    assert load(child(nhs_number=blank))["child"]["nhs_number"] is None
    messages = errors_of(request(child={"nhs_number": blank, "given_name": "Amara"}))
    assert set(messages["child"]) == {"family_name", "date_of_birth"}


def test_blank_names_count_as_absent():
    messages = errors_of(request(child={"given_name": "  ", "family_name": "",
                                        "date_of_birth": "2015-03-02"}))
    assert set(messages["child"]) == {"given_name", "family_name"}


def test_empty_child_names_every_identity_field():
    assert set(errors_of(request(child={}))["child"]) == {
        "given_name", "family_name", "date_of_birth"}


def test_names_are_trimmed_and_limited_to_100_characters():
    assert load(child(given_name="  Amara  "))["child"]["given_name"] == "Amara"
    assert load(child(family_name="x" * 100))["child"]["family_name"] == "x" * 100
    assert "family_name" in errors_of(child(family_name="x" * 101))["child"]


def test_date_of_birth_today_is_allowed_tomorrow_is_not():
    today = datetime.now(UTC).date()
    assert load(child(date_of_birth=today.isoformat()))["child"]["date_of_birth"] == today
    future = (today + timedelta(days=2)).isoformat()
    assert errors_of(child(date_of_birth=future)) == {
        "child": {"date_of_birth": ["Date of birth must be in the past."]}}


@pytest.mark.parametrize("bad", ["02/03/2015", "2015-02-30", "yesterday", 20150302])
def test_date_of_birth_must_be_an_iso_date(bad):
    assert "date_of_birth" in errors_of(child(date_of_birth=bad))["child"]


# -- child: postcodes ------------------------------------------------------------------


@pytest.mark.parametrize(("written", "tidy"), [
    ("LS6 2AB", "LS6 2AB"), ("ls6 2ab", "LS6 2AB"), (" ls6   2ab ", "LS6 2AB"),
    ("LS62AB", "LS62AB"), ("EC1A 1BB", "EC1A 1BB"), ("M1 1AE", "M1 1AE"),
    ("W1A 0AX", "W1A 0AX")])
def test_full_uk_postcodes_are_accepted_and_tidied(written, tidy):
    assert load(child(postcodes=[written]))["child"]["postcodes"] == [tidy]


@pytest.mark.parametrize("bad", ["LS6", "LS6 2A", "12345", "LS6 2AB X", "", "L 2AB"])
def test_partial_or_malformed_postcodes_are_refused_by_position(bad):
    messages = errors_of(child(postcodes=["LS6 2AB", bad]))
    assert messages == {"child": {"postcodes": {"1": ["Enter a full UK postcode, like LS6 2AB."]}}}


def test_at_most_ten_postcodes():
    assert len(load(child(postcodes=["LS6 2AB"] * 10))["child"]["postcodes"]) == 10
    assert "postcodes" in errors_of(child(postcodes=["LS6 2AB"] * 11))["child"]


def test_postcodes_must_be_strings():
    assert "postcodes" in errors_of(child(postcodes=[12]))["child"]


# -- areas, scope, purpose, deadline ---------------------------------------------------


@pytest.mark.parametrize("code", ["E08000035", "W06000015", "S12000036", "N09000003"])
def test_gss_codes_are_accepted(code):
    assert load(request(areas=[code]))["areas"] == [code]


@pytest.mark.parametrize("code", ["e08000035", "E0800003", "E080000351", "X08000035",
                                  "national", ""])
def test_anything_else_is_not_an_area(code):
    assert errors_of(request(areas=[code])) == {
        "areas": {0: ["Not a GSS code, like E08000035."]}}


def test_at_most_twenty_areas():
    assert len(load(request(areas=["E08000035"] * 20))["areas"]) == 20
    assert "areas" in errors_of(request(areas=["E08000035"] * 21))


def test_scope_values():
    assert load(request(scope="targeted"))["scope"] == "targeted"
    wide = load(request(scope="all", scope_reason="Moved often; no postcode on file"))
    assert (wide["scope"], wide["scope_reason"]) == ("all", "Moved often; no postcode on file")


@pytest.mark.parametrize("reason", [None, "", "   ", "short"])
def test_scope_all_needs_its_own_reason(reason):
    extra = {} if reason is None else {"scope_reason": reason}
    errors = errors_of(request(scope="all", **extra))
    assert list(errors) == ["scope_reason"], errors


def test_a_scope_reason_without_scope_all_is_refused():
    assert errors_of(request(scope_reason="Because I want to"))["scope_reason"] == [
        "Only used with scope all."]


@pytest.mark.parametrize("scope", ["ALL", "national", "", None])
def test_other_scopes_are_refused(scope):
    assert "scope" in errors_of(request(scope=scope))


def test_purpose_length_limits():
    assert load(request(purpose="x" * 10))["purpose"] == "x" * 10
    assert load(request(purpose="x" * 500))["purpose"] == "x" * 500
    assert "purpose" in errors_of(request(purpose="x" * 9))
    assert "purpose" in errors_of(request(purpose="x" * 501))


def test_deadline_minimum_is_100_ms():
    assert load(request(deadline_ms=100))["deadline_ms"] == 100
    assert load(request(deadline_ms=None))["deadline_ms"] is None
    assert "deadline_ms" in errors_of(request(deadline_ms=99))
    assert "deadline_ms" in errors_of(request(deadline_ms="soon"))


# -- basis -----------------------------------------------------------------------------


def test_consent_basis_fields():
    basis = load(request())["basis"]
    assert basis == {"type": "consent", "given_by": "parent", "given_on": date(2026, 11, 20),
                     "reference": "CASE-123", "covers_sensitive_services": False}


@pytest.mark.parametrize("missing", ["given_by", "given_on", "reference"])
def test_consent_basis_needs_each_of_its_fields(missing):
    basis = {"type": "consent", "given_by": "parent", "given_on": "2026-11-20",
             "reference": "CASE-123"}
    del basis[missing]
    assert errors_of(request(basis=basis)) == {
        "basis": {missing: ["Required for a consent basis."]}}


@pytest.mark.parametrize("giver", ["child", "parent", "guardian"])
def test_consent_givers(giver):
    basis = {**request()["basis"], "given_by": giver}
    assert load(request(basis=basis))["basis"]["given_by"] == giver


def test_consent_from_someone_else_is_refused():
    basis = {**request()["basis"], "given_by": "neighbour"}
    assert "given_by" in errors_of(request(basis=basis))["basis"]


def test_consent_given_on_must_be_a_date():
    basis = {**request()["basis"], "given_on": "last week"}
    assert "given_on" in errors_of(request(basis=basis))["basis"]


def test_covers_sensitive_services_is_a_boolean():
    basis = {**request()["basis"], "covers_sensitive_services": True}
    assert load(request(basis=basis))["basis"]["covers_sensitive_services"] is True
    basis = {**request()["basis"], "covers_sensitive_services": "perhaps"}
    assert "covers_sensitive_services" in errors_of(request(basis=basis))["basis"]


def test_safeguarding_basis_needs_a_justification():
    assert errors_of(request(basis={"type": "safeguarding"})) == {
        "basis": {"justification": ["Required for a safeguarding basis."]}}
    text = "Asking the parents would put the child at risk of harm now."
    basis = load(request(basis={"type": "safeguarding", "justification": text}))["basis"]
    assert basis["justification"] == text


def test_justification_is_limited_to_4000_characters():
    assert "justification" in errors_of(
        request(basis={"type": "safeguarding", "justification": "x" * 4001}))["basis"]


@pytest.mark.parametrize("power", ["children-act-1989-s47", "children-act-1989-s17",
                                   "court-order"])
def test_statutory_basis_with_each_power(power):
    basis = load(request(basis={"type": "statutory", "power": power, "reference": "S47-9"}))
    assert basis["basis"]["power"] == power


@pytest.mark.parametrize("missing", ["power", "reference"])
def test_statutory_basis_needs_power_and_reference(missing):
    basis = {"type": "statutory", "power": "court-order", "reference": "ORD-1"}
    del basis[missing]
    assert errors_of(request(basis=basis)) == {
        "basis": {missing: ["Required for a statutory basis."]}}


def test_an_unknown_power_is_refused():
    basis = {"type": "statutory", "power": "children-act-1989-s46", "reference": "R"}
    assert "power" in errors_of(request(basis=basis))["basis"]


def test_reference_is_limited_to_200_characters():
    basis = {"type": "statutory", "power": "court-order", "reference": "x" * 201}
    assert "reference" in errors_of(request(basis=basis))["basis"]


@pytest.mark.parametrize("kind", ["Consent", "legitimate-interest", "", None])
def test_an_unknown_basis_type_is_refused(kind):
    assert "type" in errors_of(request(basis={"type": kind}))["basis"]


def test_basis_type_is_required():
    assert "type" in errors_of(request(basis={"given_by": "parent"}))["basis"]
