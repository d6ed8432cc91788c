"""docs/identity.md's recipes, tested: npm's oidc-provider issues access tokens
shaped like Microsoft Entra ID's (v2: ``roles`` of app-role values, ``aud``
``api://…``, ``tid``, ``azp``, no ``client_id``, header ``typ: JWT``) and like an
NHS CIS2-style provider's (the ``nhsid_nrbac_roles`` list of RBAC role objects, an
AAL3-style ``acr``), and the broker, set up as each recipe says, maps them to
Federator's roles (issue 22)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from support.oidc_provider import (
    API_RESOURCE,
    Interop,
    api_access_token,
    jwt_parts,
    running_interop,
    sign_in,
)
from support.web_client import rewrite_session, session_record

pytestmark = pytest.mark.integration

ENTRA_AUDIENCE = "api://5f1c2e0a-federator-broker"
TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
ENTRA = {
    "provider": {
        "accounts": {
            "pat": {"name": "Pat Shah", "roles": ["Federator.Practitioner"],
                    "preferred_username": "pat@leeds.example"},
            "aud": {"name": "Ade Okoro", "roles": ["Federator.Auditor"]},
            "guest": {"name": "Gus Test", "roles": ["Directory.Reader"]},
        },
        "api": {"resource": API_RESOURCE, "audience": ENTRA_AUDIENCE, "claims": ["roles"],
                "token": {"header": {"typ": "JWT"}, "azp": True, "drop": ["client_id"],
                          "add": {"tid": TENANT, "ver": "2.0"}}},
    },
    "settings": {
        "oidc_audience": ENTRA_AUDIENCE, "oidc_token_clients": ("case-system",),
        "role_map": ("Federator.Practitioner=practitioner", "Federator.Auditor=auditor"),
        "organisation_claim": "tid",
    },
}


def rbac(role_code: str, org: str, role_id: str = "555254240100") -> dict[str, Any]:
    return {"person_orgid": "555254239107", "person_roleid": role_id,
            "org_code": org, "role_name": '"Clinical":"Clinical Provision":"Nurse Access Role"',
            "role_code": role_code, "activity_codes": ["B0264", "B0380"]}


NURSE, PRIVACY_OFFICER = "S8000:G8000:R8001", "S8003:G8005:R5010"
CIS2 = {
    "provider": {
        "accounts": {
            "nia": {"name": "Nia Jones", "acr": "AAL3_ANY", "nhsid_useruid": "910000000001",
                    "nhsid_nrbac_roles": [rbac(NURSE, "RR8")]},
            "owen": {"name": "Owen Reed", "acr": "AAL3_ANY",
                     "nhsid_nrbac_roles": [rbac(PRIVACY_OFFICER, "RR8")]},
            "weak": {"name": "Wyn Low", "acr": "AAL1_USERPASS",
                     "nhsid_nrbac_roles": [rbac(NURSE, "RR8")]},
            "clerk": {"name": "Cal Kerr", "acr": "AAL3_ANY",
                      "nhsid_nrbac_roles": [rbac("S0080:G0450:R5080", "RR8")]},
            # a nurse at one trust who chose her admin role at another at sign-in
            "dual": {"name": "Dee Lane", "acr": "AAL3_ANY", "selected_roleid": "2",
                     "nhsid_nrbac_roles": [rbac(NURSE, "RR8", "1"),
                                           rbac("S0080:G0450:R5080", "RX1", "2")]},
        },
        "api": {"resource": API_RESOURCE, "audience": "federator-interop",
                "claims": ["acr", "nhsid_nrbac_roles", "nhsid_useruid", "selected_roleid"],
                "token": {"header": {"typ": "JWT"}, "azp": True}},
    },
    "settings": {
        "roles_claim": "nhsid_nrbac_roles.role_code",
        "role_map": (f"{NURSE}=practitioner", f"{PRIVACY_OFFICER}=auditor"),
        "organisation_claim": "nhsid_nrbac_roles.org_code",
        "required_acr": ("AAL3_ANY",), "oidc_token_clients": ("case-system",),
        "role_selector": "selected_roleid=person_roleid",
    },
}


@pytest.fixture
def recipe(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Interop]:
    shape = request.param
    with running_interop(tmp_path, provider=shape["provider"], **shape["settings"]) as interop:
        yield interop


def lookup(interop: Interop, token: str) -> requests.Response:
    """An empty lookup: 422 once the token is accepted and its role may look up."""
    return requests.post(f"{interop.broker.url}/api/v1/lookups", json={}, timeout=15,
                         headers={"Authorization": f"Bearer {token}"})


def verify(interop: Interop, token: str) -> requests.Response:
    return requests.get(f"{interop.broker.url}/api/v1/audit/verify", timeout=30,
                        headers={"Authorization": f"Bearer {token}"})


@pytest.mark.parametrize("recipe", [ENTRA], indirect=True)
def test_entra_id_v2_tokens_map_app_roles(recipe: Interop) -> None:
    token = api_access_token(recipe, "pat")
    header, claims = jwt_parts(token)
    assert header["typ"] == "JWT"  # an Entra v2 access token is no RFC 9068 at+jwt
    assert claims["aud"] == ENTRA_AUDIENCE and claims["tid"] == TENANT
    assert claims["azp"] == "case-system" and "client_id" not in claims
    assert claims["roles"] == ["Federator.Practitioner"]
    assert lookup(recipe, token).status_code == 422  # accepted, a practitioner
    assert verify(recipe, token).status_code == 403  # not an auditor
    auditor = api_access_token(recipe, "aud")
    assert verify(recipe, auditor).status_code == 200
    assert lookup(recipe, auditor).status_code == 403
    guest = api_access_token(recipe, "guest")  # an app role Federator does not map
    assert lookup(recipe, guest).status_code == 403
    other = api_access_token(recipe, "pat", client_id="other-system")
    assert lookup(recipe, other).status_code == 401  # azp not a listed client
    principal = recipe.app.extensions["federator"].tokens.principal(token)
    assert principal.organisation == TENANT and principal.roles == ("practitioner",)


@pytest.mark.parametrize("recipe", [CIS2], indirect=True)
def test_cis2_style_rbac_codes_and_aal3(recipe: Interop) -> None:
    token = api_access_token(recipe, "nia")
    header, claims = jwt_parts(token)
    assert header["typ"] == "JWT" and claims["acr"] == "AAL3_ANY"
    assert claims["nhsid_nrbac_roles"][0]["role_code"] == NURSE
    assert lookup(recipe, token).status_code == 422  # a nurse: a practitioner
    principal = recipe.app.extensions["federator"].tokens.principal(token)
    assert principal.roles == ("practitioner",) and principal.organisation == "RR8"
    officer = api_access_token(recipe, "owen")
    assert verify(recipe, officer).status_code == 200
    assert lookup(recipe, api_access_token(recipe, "clerk")).status_code == 403  # unmapped
    weak = lookup(recipe, api_access_token(recipe, "weak"))  # a nurse, but AAL1
    assert weak.status_code == 401 and "acr" in weak.json()["message"]
    # only the role chosen at sign-in counts: Dee chose her admin role, not the nurse's
    dual = api_access_token(recipe, "dual")
    assert jwt_parts(dual)[1]["selected_roleid"] == "2"
    assert lookup(recipe, dual).status_code == 403
    recipe.put_account("dual", {**CIS2["provider"]["accounts"]["dual"], "selected_roleid": "1"})
    as_nurse = api_access_token(recipe, "dual")
    assert lookup(recipe, as_nurse).status_code == 422
    assert recipe.app.extensions["federator"].tokens.principal(as_nurse).organisation == "RR8"


ENTRA_WEB = {"provider": {**ENTRA["provider"], "userinfo_omits": ["roles"]},
             "settings": ENTRA["settings"]}


@pytest.mark.parametrize("recipe", [ENTRA_WEB], indirect=True)
def test_entra_web_sessions_re_read_roles_from_the_renewed_id_token(recipe: Interop) -> None:
    """Entra's userinfo has no app roles; its ID token has. The periodic re-read takes
    the refresh grant's new ID token, so a practitioner stays signed in, and one whose
    app role was removed in Entra is signed out."""
    with requests.Session() as http:
        landed = sign_in(recipe, http, "pat", next_path="/lookups/new")
        assert landed.status_code == 200, landed.text[:300]
        cookie = recipe.cookie(http)
        assert cookie is not None
        assert session_record(recipe.app, cookie)["principal"]["roles"] == ["practitioner"]
        back_in_time(recipe, cookie)
        again = http.get(f"{recipe.broker.url}/lookups/new", headers=HTML, timeout=15,
                         allow_redirects=False)
        assert again.status_code == 200  # re-read, still a practitioner
        assert session_record(recipe.app, cookie)["roles_checked_at"] > time.time() - 60
        recipe.put_account("pat", {**ENTRA["provider"]["accounts"]["pat"], "roles": []})
        back_in_time(recipe, cookie)
        ended = http.get(f"{recipe.broker.url}/lookups/new", headers=HTML, timeout=15,
                         allow_redirects=False)
        assert ended.status_code in (302, 303) and "/sign-in" in ended.headers["Location"]
        assert session_record(recipe.app, cookie) == {}


HTML = {"Accept": "text/html"}


def back_in_time(interop: Interop, cookie: str, minutes: float = 6) -> None:
    rewrite_session(interop.app, cookie, roles_checked_at=time.time() - minutes * 60,
                    last_seen=time.time())
