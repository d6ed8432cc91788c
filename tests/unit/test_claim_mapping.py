"""FEDERATOR_ROLE_MAP and dotted claim paths through lists (issue 22:
docs/identity.md's Entra ID and CIS2-style recipes)."""

from __future__ import annotations

import pytest

from federator.auth.tokens import InvalidToken, claim, principal_from_claims
from federator.config import ConfigError, Settings

CIS2 = {"sub": "u1", "nhsid_nrbac_roles": [
    {"org_code": "RR8", "role_code": "S8000:G8000:R8001", "activity_codes": ["B0264"]},
    {"org_code": "RX1", "role_code": "S0080:G0450:R5080", "activity_codes": ["B0380"]}]}


def test_a_path_through_a_list_collects_each_objects_value() -> None:
    assert claim(CIS2, "nhsid_nrbac_roles.role_code") == ["S8000:G8000:R8001",
                                                          "S0080:G0450:R5080"]
    assert claim(CIS2, "nhsid_nrbac_roles.activity_codes") == ["B0264", "B0380"]
    assert claim(CIS2, "nhsid_nrbac_roles.missing") is None
    assert claim({"realm_access": {"roles": ["auditor"]}}, "realm_access.roles") == ["auditor"]
    assert claim({"a": "text"}, "a.b") is None


def test_the_role_map_grants_only_what_it_lists() -> None:
    mapping = {"S8000:G8000:R8001": "practitioner"}
    p = principal_from_claims(CIS2, roles_claim="nhsid_nrbac_roles.role_code",
                              organisation_claim="nhsid_nrbac_roles.org_code",
                              role_map=mapping)
    assert p.roles == ("practitioner",)
    assert p.organisation == ""  # roles at two organisations: which one is not guessed
    one = {**CIS2, "nhsid_nrbac_roles": CIS2["nhsid_nrbac_roles"][:1]}
    assert principal_from_claims(one, roles_claim="nhsid_nrbac_roles.role_code",
                                 organisation_claim="nhsid_nrbac_roles.org_code",
                                 role_map=mapping).organisation == "RR8"
    # a value that is itself a role name grants nothing once a map is set
    named = {"sub": "u2", "roles": ["auditor", "Federator.Practitioner"]}
    assert principal_from_claims(named, role_map={"Federator.Practitioner": "practitioner"}
                                 ).roles == ("practitioner",)
    assert principal_from_claims(named).roles == ("auditor",)  # no map: names as they are


def test_role_map_setting_is_read_and_checked() -> None:
    env = {"FEDERATOR_ENV": "development",
           "FEDERATOR_ROLE_MAP": "Federator.Auditor=auditor, S8000:G8000:R8001=practitioner"}
    assert Settings.from_env(env).role_mapping == {
        "Federator.Auditor": "auditor", "S8000:G8000:R8001": "practitioner"}
    for bad in ("Federator.Auditor", "X=admin", "=auditor"):
        with pytest.raises(ConfigError, match="FEDERATOR_ROLE_MAP"):
            Settings.from_env({**env, "FEDERATOR_ROLE_MAP": bad})


def test_the_selector_keeps_only_the_chosen_role_object() -> None:
    two = {"sub": "u3", "selected_roleid": "p2", "nhsid_nrbac_roles": [
        {"person_roleid": "p1", "org_code": "RR8", "role_code": "S8000:G8000:R8001"},
        {"person_roleid": "p2", "org_code": "RX1", "role_code": "S0080:G0450:R5080"}]}
    how = {"roles_claim": "nhsid_nrbac_roles.role_code",
           "organisation_claim": "nhsid_nrbac_roles.org_code",
           "role_map": {"S8000:G8000:R8001": "practitioner"}}
    assert principal_from_claims(two, **how).roles == ("practitioner",)  # every role counts
    chosen = principal_from_claims(two, role_selector=("selected_roleid", "person_roleid"),
                                   **how)
    assert chosen.roles == () and chosen.organisation == "RX1"  # the clerk's role only
    nurse = principal_from_claims({**two, "selected_roleid": "p1"},
                                  role_selector=("selected_roleid", "person_roleid"), **how)
    assert nurse.roles == ("practitioner",) and nurse.organisation == "RR8"
    unselected = {k: v for k, v in two.items() if k != "selected_roleid"}
    none_chosen = principal_from_claims(unselected,
                                        role_selector=("selected_roleid", "person_roleid"), **how)
    assert none_chosen.roles == () and not none_chosen.organisation  # no choice made: none


def test_role_selector_setting_is_read_and_checked() -> None:
    env = {"FEDERATOR_ENV": "development",
           "FEDERATOR_ROLE_SELECTOR": "selected_roleid=person_roleid"}
    assert Settings.from_env(env).role_selection == ("selected_roleid", "person_roleid")
    assert Settings.from_env({"FEDERATOR_ENV": "development"}).role_selection is None
    for bad in ("selected_roleid", "=person_roleid", "selected_roleid="):
        with pytest.raises(ConfigError, match="FEDERATOR_ROLE_SELECTOR"):
            Settings.from_env({**env, "FEDERATOR_ROLE_SELECTOR": bad})


@pytest.mark.parametrize("claims", [
    {"sub": "u" * 201}, {"sub": "u\ud800"}, {"sub": "u\x00"},
    {"sub": "u1", "organisation": "Leeds" * 41}, {"sub": "u1", "organisation": "Leeds\n"}])
def test_a_subject_or_organisation_the_trail_cannot_record_is_refused_at_sign_in(claims):
    """Else every lookup of theirs would fail its audit (the trail's columns hold 200)."""
    with pytest.raises(InvalidToken, match="at most 200 characters"):
        principal_from_claims(claims)


def test_a_subject_of_200_characters_signs_in() -> None:
    assert principal_from_claims({"sub": "u" * 200, "organisation": "L" * 200}).id == "u" * 200
