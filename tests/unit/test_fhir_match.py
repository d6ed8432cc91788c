"""Finding the child at a FHIR endpoint, as pure functions (adapters/fhir_match.py):
the CapabilityStatement, $match's grades and scores, and the kit's rules."""

from __future__ import annotations

from typing import Any

from adapters.fhir_match import (
    MATCH_GRADE,
    NHS_NUMBER_SYSTEM,
    Graded,
    by_nhs_number,
    demographic_searches,
    graded,
    judge_match,
    judge_search,
    offers_match,
    record_of,
)

CHILD = {"given_name": "Amara", "family_name": "Okafor", "date_of_birth": "2015-03-12",
         "postcodes": ["LS6 2AB"]}


def patient(pid: str = "p1", nhs: str | None = None, **name: Any) -> dict[str, Any]:
    found: dict[str, Any] = {
        "resourceType": "Patient", "id": pid, "birthDate": "2015-03-12",
        "name": [{"use": "official", "family": name.get("family", "Okafor"),
                  "given": [name.get("given", "Amara")]}],
        "address": [{"postalCode": "LS6 2AB"}]}
    if nhs:
        found["identifier"] = [{"system": NHS_NUMBER_SYSTEM, "value": nhs}]
    return found


def test_the_capability_statement_offers_match_on_patient_or_the_system() -> None:
    def statement(**rest: Any) -> dict[str, Any]:
        return {"resourceType": "CapabilityStatement", "rest": [{"mode": "server", **rest}]}

    on_patient = statement(resource=[{"type": "Patient", "operation": [
        {"name": "match", "definition": "x"}]}])
    assert offers_match(on_patient)
    assert offers_match(statement(operation=[
        {"name": "patient-match",
         "definition": "http://hl7.org/fhir/OperationDefinition/Patient-match"}]))
    assert not offers_match(statement(resource=[{"type": "Patient"}]))
    assert not offers_match(statement(resource=[{"type": "Practitioner", "operation": [
        {"name": "match"}]}]))
    assert not offers_match({"resourceType": "Bundle"})
    client_mode = {"resourceType": "CapabilityStatement", "rest": [
        {"mode": "client", "resource": [{"type": "Patient", "operation": [{"name": "match"}]}]}]}
    assert not offers_match(client_mode)


def test_grades_and_scores_are_read_and_nonsense_is_ignored() -> None:
    def entry(grade: Any, score: Any) -> dict[str, Any]:
        return {"resource": patient(f"p-{grade}"), "search": {
            "mode": "match", "score": score,
            "extension": [{"url": MATCH_GRADE, "valueCode": grade}]}}

    found = graded({"entry": [entry("certain", 0.9), entry("sure", 2), entry("possible", True),
                              {"resource": {"resourceType": "OperationOutcome"}}]})
    assert [(g.grade, g.score) for g in found] == [("certain", 0.9), (None, None),
                                                   ("possible", None)]


def test_a_possible_grade_is_never_a_match() -> None:
    out = judge_match(CHILD, [Graded(patient(), "possible", 0.8)], authority="Kirklees")
    assert out.status == "possible" and out.confidence == 0.8
    assert out.notice and "Kirklees" in out.notice


def test_certain_is_a_match_unless_the_kits_rules_veto_it() -> None:
    assert judge_match(CHILD, [Graded(patient(), "certain", 0.95)],
                       authority="x").status == "match"
    asked = {**CHILD, "nhs_number": "9434765889"}
    other = Graded(patient(nhs="9434765919"), "certain", 1.0)
    assert judge_match(asked, [other], authority="x").status == "none"
    # a sibling (same family name and date of birth, another given name): possible
    sibling = Graded(patient(given="Zara"), "certain", 1.0)
    assert judge_match(CHILD, [sibling], authority="x").status == "possible"
    assert judge_match(CHILD, [Graded(patient(), "certainly-not", 1.0)],
                       authority="x").status == "none"


def test_a_probable_grade_needs_the_kits_own_match() -> None:
    assert judge_match(CHILD, [Graded(patient(), "probable", None)],
                       authority="x").status == "match"
    far = Graded(patient(given="Ada", family="Oak"), "probable", 0.9)
    assert judge_match(CHILD, [far], authority="x").status == "possible"


def test_the_search_path_scores_with_the_kit_and_checks_nhs_numbers() -> None:
    hyphen = patient(family="Okafor-Smith")
    assert judge_search(CHILD, [hyphen], authority="x").status == "match"
    assert judge_search(CHILD, [], authority="x").status == "none"
    assert by_nhs_number("9434765919", [patient(nhs="9434765919"),
                                        patient("p2", nhs="9434765889")]) == [
        patient(nhs="9434765919")]
    assert demographic_searches(CHILD) == [
        [("family", "Okafor"), ("birthdate", "2015-03-12")],
        [("given", "Amara"), ("birthdate", "2015-03-12")]]


def test_a_patient_as_a_kit_record_takes_its_official_current_name() -> None:
    p = {"resourceType": "Patient", "id": "x", "birthDate": "2015-03-12",
         "name": [{"use": "old", "family": "Before", "given": ["A"]},
                  {"use": "usual", "family": "Now", "given": ["Amara", "Jo"]}],
         "address": [{"postalCode": "LS1 1AA", "period": {"end": "2020-01-01"}},
                     {"postalCode": "LS6 2AB"}]}
    record = record_of(p, 3)
    assert (record.child_ref, record.family_name, record.given_name, record.postcode) == (
        "3", "Now", "Amara Jo", "LS6 2AB")


def test_a_flood_of_candidates_is_cut_and_still_not_a_match() -> None:
    entry = {"resource": patient(), "search": {"mode": "match", "extension": [
        {"url": MATCH_GRADE, "valueCode": "certain"}]}}
    flood = {"entry": [{**entry, "resource": patient(f"p{i}")} for i in range(5000)]}
    found = graded(flood)
    assert len(found) == 50
    assert judge_match(CHILD, found, authority="x").status == "possible"


def test_a_merged_record_beside_the_one_that_replaced_it_is_one_child() -> None:
    old = {**patient("old", nhs="9434765919"), "active": False,
           "link": [{"type": "replaced-by", "other": {"reference": "Patient/new"}}]}
    new = patient("new", nhs="9434765919")
    assert by_nhs_number("9434765919", [old, new]) == [new]
    assert judge_search(CHILD, [old, new], authority="x").patient == new
    # without the record that replaced it, the merged one is still a candidate
    assert by_nhs_number("9434765919", [old]) == [old]
