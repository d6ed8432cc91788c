"""Pure parts of the FHIR R4 client: references, paging links, outcomes, names."""

from __future__ import annotations

from datetime import date

import pytest

from adapters.base import AdapterError
from adapters.fhir_r4 import _next_path, operation_outcome
from adapters.fhir_r4_mapping import demographics_agree, professionals_from, ref

BASE = "https://fhir.example/R4"


def test_references_relative_and_absolute() -> None:
    assert ref({"reference": "Practitioner/1"}) == "Practitioner/1"
    assert ref({"reference": f"{BASE}/Organization/o1"}) == "Organization/o1"
    assert ref({"display": "no reference"}) is None and ref(None) is None


def test_next_page_only_on_the_same_server() -> None:
    bundle = {"link": [{"relation": "next", "url": f"{BASE}/CareTeam?_page=2"}]}
    assert _next_path(bundle, BASE) == "/CareTeam?_page=2"
    assert _next_path({"link": [{"relation": "self", "url": BASE}]}, BASE) is None
    with pytest.raises(AdapterError, match="another server"):
        _next_path({"link": [{"relation": "next", "url": "https://evil.example/R4/x"}]}, BASE)
    with pytest.raises(AdapterError):
        _next_path({"link": [{"relation": "next", "url": BASE + ".evil.example/x"}]}, BASE)


def test_operation_outcome_summary_keeps_no_diagnostics() -> None:
    body = (b'{"resourceType":"OperationOutcome","issue":[{"severity":"error",'
            b'"code":"invalid","diagnostics":"bad identifier 9434765919"}]}')
    assert operation_outcome(body) == ": OperationOutcome error/invalid"
    assert operation_outcome(b"<html>") == ""


def test_demographics_must_agree_exactly_after_normalising() -> None:
    patient = {"birthDate": "2015-03-12", "name": [{"family": "O'Neil", "given": ["Zoe"]}]}
    assert demographics_agree(patient, "zoe", "ONeil", "2015-03-12")
    assert not demographics_agree(patient, "Zoe", "ONeill", "2015-03-12")
    assert not demographics_agree(patient, "Zoe", "O'Neil", "2015-03-13")


def test_a_participant_without_a_practitioner_is_left_out() -> None:
    team = {"resourceType": "CareTeam", "status": "active", "participant": [
        {"member": {"reference": "Organization/o1"}},
        {"member": {"reference": "Practitioner/p1"}, "period": {"end": "2020-01-01"}}]}
    known = {"Practitioner/p1": {"resourceType": "Practitioner",
                                 "name": [{"text": "Dr A Person"}]}}
    people = list(professionals_from([team], [], known, today=date(2026, 1, 1)))
    assert [(p["name"], p["current"], p["to"]) for p in people] == [
        ("Dr A Person", False, "2020-01-01")]


def test_fhir_date_times_become_the_protocols_iso_dates() -> None:
    team = {"resourceType": "CareTeam", "status": "active", "participant": [
        {"member": {"reference": "Practitioner/p1"},
         "period": {"start": "2025-09-01T09:30:00+01:00", "end": "2026"}}]}
    known = {"Practitioner/p1": {"resourceType": "Practitioner",
                                 "name": [{"text": "Dr A Person"}]}}
    [person] = professionals_from([team], [], known, today=date(2025, 10, 1))
    assert (person["from"], person["to"]) == ("2025-09-01", None)
