"""The registry forms' pure mapping: form values to the API's payload, the
registry's errors back onto the form's fields."""

from __future__ import annotations

from federator.web.registry_forms import (
    coverage_codes,
    form_values,
    friendly,
    payload_from_form,
    place_errors,
)


def test_coverage_is_split_and_upper_cased_and_national_kept() -> None:
    assert coverage_codes(" e08000035,E08000036;\nE08000034 ") == [
        "E08000035", "E08000036", "E08000034"]
    assert coverage_codes("National") == ["national"]
    assert coverage_codes("") == []


def test_payload_leaves_out_empty_values_and_keeps_bad_ones_for_the_schema() -> None:
    payload = payload_from_form({
        "name": " Leeds ", "code": "e08000035", "coverage": "E08000035", "protocol": "",
        "url": "https://a.example", "timeout_ms": "soon", "contact": "",
        "token_url": "", "client_id": "", "client_secret": "", "scope": "", "csrf_token": "t"})
    assert payload == {"name": "Leeds", "code": "E08000035", "coverage": ["E08000035"],
                       "url": "https://a.example", "timeout_ms": "soon"}
    assert payload_from_form({"timeout_ms": "2500"})["timeout_ms"] == 2500


def test_credentials_only_when_some_are_typed() -> None:
    payload = payload_from_form({"client_id": "id", "client_secret": "s", "scope": " "})
    assert payload["credentials"] == {"client_id": "id", "client_secret": "s"}


def test_errors_are_placed_on_fields_and_credentials_on_their_own_inputs() -> None:
    placed = place_errors({
        "url": ["10.0.0.1 is not a public address"],
        "credentials": {"client_id": ["Missing data for required field."],
                        "client_secret": ["Missing data for required field."]},
        "id": ["Lower-case letters"], "timeout_ms": ["Not a valid integer."]})
    assert placed["url"] == ["10.0.0.1 is not a public address"]
    assert placed["client_id"] and placed["client_secret"]
    assert placed["form"] == ["Lower-case letters"]
    words = friendly(placed)
    assert words["client_id"] == ["Enter the client ID"]
    assert words["timeout_ms"] == ["The time limit must be a whole number of milliseconds"]
    assert place_errors({"credentials": ["federator-lookup/1 takes no credentials."]}) == {
        "token_url": ["federator-lookup/1 takes no credentials."]}


def test_a_stored_endpoint_fills_the_change_form_without_credentials() -> None:
    values = form_values({"name": "L", "code": "E08000035", "coverage": ["E08000035", "E1"],
                          "protocol": "fhir-r4", "url": "https://a", "timeout_ms": 3000,
                          "contact": "c", "credentials_stored": True})
    assert values["coverage"] == "E08000035 E1" and values["timeout_ms"] == "3000"
    assert not {"token_url", "client_id", "client_secret", "credentials"} & set(values)
