"""The kit's policy for FHIR endpoints, as pure functions (adapters/fhir_policy.py)
and the registry's checks of an endpoint's policy (federator/registry/policy.py)."""

from __future__ import annotations

from typing import Any

import pytest
from marshmallow import ValidationError

from adapters.fhir_policy import (
    CONFIDENTIALITY,
    DEFAULT_SENSITIVE,
    SNOMED,
    FhirPolicy,
    is_restricted,
    parse_coding,
    policy_for,
    restricted_notice,
    screen,
    verhoeff_ok,
)
from federator.registry.policy import PolicySchema, canonical, shares_more

S17 = {"type": "statutory", "power": "children-act-1989-s17"}
S47 = {"type": "statutory", "power": "children-act-1989-s47"}
SEXUAL_HEALTH = "788122004"


def concept(code: str, system: str = SNOMED) -> list[dict[str, Any]]:
    return [{"coding": [{"system": system, "code": code}]}]


def team(category: str, *members: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"resourceType": "CareTeam", "id": "t1", "category": concept(category),
            "participant": [{"member": m} for m in members], **extra}


def test_every_default_code_is_a_snomed_ct_id_with_its_check_digit() -> None:
    assert len({code for code, _, _ in DEFAULT_SENSITIVE}) == len(DEFAULT_SENSITIVE)
    assert {group for _, _, group in DEFAULT_SENSITIVE} == {
        "sexual health", "substance misuse", "mental health"}
    assert all(verhoeff_ok(code) for code, _, _ in DEFAULT_SENSITIVE)
    assert not verhoeff_ok("788122005")


@pytest.mark.parametrize("text, fault", [
    ("788122005", "SNOMED CT"), ("12", "SNOMED CT"), ("ftp://x|a", "code system"),
    ("http://x.example|", "not a code"), ("http://x.example|a b", "not a code"),
    (f"{SNOMED}|abc", "SNOMED CT"),
])
def test_a_coding_that_is_not_one_is_named(text: str, fault: str) -> None:
    with pytest.raises(ValueError, match=fault):
        parse_coding(text)


def test_codings_parse() -> None:
    assert parse_coding(" 788122004 ") == (SNOMED, SEXUAL_HEALTH)
    assert parse_coding("urn:oid:1.2.3|X-1") == ("urn:oid:1.2.3", "X-1")


def test_a_sensitive_team_category_is_held_back_unless_the_basis_covers_it() -> None:
    teams = [team(SEXUAL_HEALTH, {"reference": "Practitioner/p1"})]
    policy = FhirPolicy()
    hidden = screen(teams, [], {}, policy, S17)
    assert hidden.teams == [] and hidden.withheld
    shown = screen(teams, [], {}, policy, S47)
    assert shown.teams == teams and not shown.withheld
    # a code from another system with the same digits is not the concept
    other = [team(SEXUAL_HEALTH, {"reference": "Practitioner/p1"})]
    other[0]["category"] = concept(SEXUAL_HEALTH, "http://example.org/local")
    assert not screen(other, [], {}, policy, S17).withheld


def test_a_role_is_sensitive_by_its_specialty_or_its_services_type_contained_or_read(
        ) -> None:
    role = {"resourceType": "PractitionerRole", "id": "r1",
            "healthcareService": [{"reference": "HealthcareService/h1"}]}
    service = {"resourceType": "HealthcareService", "id": "h1", "type": concept("310031001")}
    known = {"PractitionerRole/r1": role, "HealthcareService/h1": service}
    teams = [team("931821000000105", {"reference": "PractitionerRole/r1"},
                  {"reference": "Practitioner/p2"})]
    out = screen(teams, [], known, FhirPolicy(), S17)
    assert out.withheld and [p["member"] for p in out.teams[0]["participant"]] == [
        {"reference": "Practitioner/p2"}]
    contained = team("931821000000105", {"reference": "#r9"}, contained=[{
        "resourceType": "PractitionerRole", "id": "r9", "specialty": concept("708168004")}])
    assert screen([contained], [], {}, FhirPolicy(), S17).teams[0]["participant"] == []


def test_a_sensitive_episodes_team_is_sensitive_too() -> None:
    episode = {"resourceType": "EpisodeOfCare", "id": "e1", "type": concept("708168004"),
               "team": [{"reference": "CareTeam/t1"}]}
    out = screen([team("931821000000105", {"reference": "Practitioner/p1"})], [episode], {},
                 FhirPolicy(), S17)
    assert out.teams == [] and out.episodes == [] and out.withheld


def test_restricted_by_r_v_or_a_configured_label() -> None:
    def patient(system: str, code: str) -> dict[str, Any]:
        return {"resourceType": "Patient", "meta": {"security": [
            {"system": system, "code": code}]}}

    plain = policy_for({})
    assert is_restricted(patient(CONFIDENTIALITY, "R"), plain)
    assert is_restricted(patient(CONFIDENTIALITY, "V"), plain)
    assert not is_restricted(patient(CONFIDENTIALITY, "N"), plain)
    assert not is_restricted({"resourceType": "Patient", "meta": {"security": "R"}}, plain)
    local = policy_for({"restricted_labels": ["http://x.example|SHIELD"]})
    assert is_restricted(patient("http://x.example", "SHIELD"), local)
    assert not is_restricted(patient("http://x.example", "SHIELD"), plain)


def test_the_restricted_notice_names_the_route_or_the_authority() -> None:
    assert "Call the duty desk" in restricted_notice(policy_for(
        {"restricted_route": "Call the duty desk"}, authority="Kirklees"))
    assert "Kirklees's front door" in restricted_notice(policy_for({}, authority="Kirklees"))


def test_the_registry_stores_a_policy_canonically() -> None:
    loaded = PolicySchema().load({"sensitive_codes": ["788122004", f"{SNOMED}|788122004"],
                                  "include_default": True, "restricted_route": "  "})
    assert loaded == {"sensitive_codes": [f"{SNOMED}|788122004"]}
    assert PolicySchema().load({}) is None and canonical({}) is None
    with pytest.raises(ValidationError) as e:
        PolicySchema().load({"sensitive_codes": ["x" * 301], "restricted_route": "a\nb"})
    assert set(e.value.messages) == {"sensitive_codes", "restricted_route"}


def test_a_policy_shares_more_when_it_holds_back_less() -> None:
    assert shares_more(None, {"sensitive_codes": [f"{SNOMED}|931821000000105"]}) == []
    assert shares_more(None, {"include_default": False})[0].startswith(
        "sensitive codes no longer held back: ")
    label = {"restricted_labels": ["http://x.example|S"]}
    assert shares_more(label, None) == ["restricted labels no longer honoured: "
                                        "http://x.example|S"]
    assert shares_more(None, {"restricted_route": "elsewhere"}) == []


def test_the_seed_file_takes_a_policy_and_names_a_bad_one() -> None:
    from federator.registry.seedfile import SeedError, parse_seed

    entry = ('[[endpoint]]\nid = "kh"\nname = "K"\ncode = "RXF"\ncoverage = ["national"]\n'
             'protocol = "{protocol}"\nurl = "https://fhir.example/R4"\n'
             '[endpoint.policy]\nsensitive_codes = ["{code}"]\n')
    (seeded,) = parse_seed(entry.format(protocol="fhir-r4", code="788122004").encode())
    assert seeded["policy"] == {"sensitive_codes": [f"{SNOMED}|788122004"]}
    with pytest.raises(SeedError, match=r"policy.*sensitive_codes"):
        parse_seed(entry.format(protocol="fhir-r4", code="788122005").encode())
    with pytest.raises(SeedError, match="only for fhir-r4"):
        parse_seed(entry.format(protocol="federator-lookup/1", code="788122004").encode())
