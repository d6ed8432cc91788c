"""Pure parts of the FHIR R4 client: mapping, names (references and paging links:
test_fhir_refs.py; OperationOutcomes: test_fhir_outcome.py)."""

from __future__ import annotations

from datetime import date

from adapters.fhir_r4_mapping import demographics_agree, professionals_from, ref


def test_references_are_the_keys_normalise_wrote() -> None:
    assert ref({"reference": "Practitioner/1"}) == "Practitioner/1"
    assert ref({"reference": "CareTeam/t1#p1"}) == "CareTeam/t1#p1"
    assert ref({"display": "no reference"}) is None and ref(None) is None


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
