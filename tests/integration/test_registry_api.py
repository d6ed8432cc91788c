"""The registry API through the real parts: identity provider, broker and kits
on loopback, SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import delete, select
from support.web_client import pass_check

from federator.config import Settings
from federator.demo.federation import Federation, start_federation
from federator.storage import endpoints

pytestmark = pytest.mark.integration

SECRET = "s3cret-client-value-0123456789"


@pytest.fixture
def fed(tmp_path: Path, database_url: str) -> Iterator[Federation]:
    federation = start_federation(tmp_path / "demo", authorities=4,
                                  base=Settings(database_url=database_url))
    yield federation
    federation.stop()


def call(fed: Federation, method: str, path: str, persona: str, body: Any = None
         ) -> requests.Response:
    return requests.request(method, f"{fed.broker.url}/api/v1/registry{path}", json=body,
                            headers={"Authorization": f"Bearer {fed.token(persona)}"},
                            timeout=30)


def new_endpoint(endpoint_id: str, url: str, **extra: Any) -> dict[str, Any]:
    return {"id": endpoint_id, "name": "Newtown Children's Services", "code": "E08000099",
            "coverage": ["E08000099"], "protocol": "federator-lookup/1", "url": url,
            "timeout_ms": 2000, "contact": "Newtown Front Door, 0100 000 0000", **extra}


def unregistered(fed: Federation) -> tuple[str, str]:
    """A live authority whose endpoint is not registered yet (its row deleted), and
    its kit's URL: registered again, its own kit passes the conformance checks."""
    authority = next(a for a in fed.world.authorities
                     if a.behaviour == "normal" and a.coverage != ["national"]).id
    services = fed.app.extensions["federator"]
    url = services.registry.get(authority).url
    with services.engine.begin() as conn:
        conn.execute(delete(endpoints).where(endpoints.c.id == authority))
    services.registry.invalidate()
    return authority, url


def test_register_approve_suspend_resume_all_audited(fed: Federation) -> None:
    authority, kit_url = unregistered(fed)
    admin = f"authority-admin:{authority}"
    created = call(fed, "POST", "/endpoints", admin, new_endpoint(authority, kit_url))
    assert created.status_code == 201, created.text
    assert created.json()["status"] == "pending"
    assert authority not in {e.id for e in fed.app.extensions["federator"].registry.all()
                             if e.status == "active"}

    # an authority admin cannot approve its own endpoint
    assert call(fed, "POST", f"/endpoints/{authority}/approve", admin).status_code == 403
    rejected = call(fed, "POST", f"/endpoints/{authority}/reject", "broker-admin", {})
    assert rejected.status_code == 422 and "reason" in rejected.json()["errors"]["json"]
    # never tested: not approved
    untested = call(fed, "POST", f"/endpoints/{authority}/approve", "broker-admin")
    assert untested.status_code == 409 and "never been tested" in untested.json()["message"]
    assert call(fed, "POST", f"/endpoints/{authority}/check", admin).json()["passed"] is True
    approved = call(fed, "POST", f"/endpoints/{authority}/approve", "broker-admin",
                    {"reason": "checked with Newtown IT"})
    assert approved.json()["status"] == "active"
    assert call(fed, "POST", f"/endpoints/{authority}/approve",
                "broker-admin").status_code == 409
    suspended = call(fed, "POST", f"/endpoints/{authority}/suspend", admin,
                     {"reason": "maintenance tonight"})
    assert suspended.json()["status"] == "suspended"
    assert suspended.json()["status_reason"] == "maintenance tonight"
    assert call(fed, "POST", f"/endpoints/{authority}/resume", admin).json()["status"] == \
        "active"
    # a broker admin's suspension is the broker admin's to lift, not the authority's
    assert call(fed, "POST", f"/endpoints/{authority}/suspend", "broker-admin",
                {"reason": "answers with other authorities' professionals"}
                ).json()["status"] == "suspended"
    undone = call(fed, "POST", f"/endpoints/{authority}/resume", admin)
    assert undone.status_code == 403, undone.text
    assert "only a broker administrator" in undone.json()["message"]
    assert call(fed, "POST", f"/endpoints/{authority}/resume", "broker-admin"
                ).json()["status"] == "active"

    # a change of URL needs approval again; a change of contact does not
    other_url = next(u for u in fed.kit_urls.values() if u != kit_url)
    assert call(fed, "PATCH", f"/endpoints/{authority}", admin,
                {"contact": "0100 111 1111"}).json()["status"] == "active"
    changed = call(fed, "PATCH", f"/endpoints/{authority}", admin, {"url": other_url})
    assert changed.json()["status"] == "pending" and changed.json()["url"] == other_url

    trail = fed.app.extensions["federator"].trail
    events = [r["event"] for r in trail.records(limit=1000)
              if r.get("endpoint") == authority]
    assert events == ["registry.registered", "registry.checked", "registry.approved",
                      "registry.suspended", "registry.resumed", "registry.suspended",
                      "registry.resumed", "registry.updated", "registry.updated"]
    assert trail.verify().ok


def test_authority_admins_cannot_see_or_change_another_authority(fed: Federation) -> None:
    theirs = fed.world.authorities[0].id
    mine = "authority-admin:newtown-cs"
    listed = call(fed, "GET", "/endpoints", mine).json()["endpoints"]
    assert listed == []
    everything = call(fed, "GET", "/endpoints", "broker-admin").json()["endpoints"]
    assert theirs in {e["id"] for e in everything}
    for method, path, body in [
        ("GET", f"/endpoints/{theirs}", None),
        ("GET", f"/endpoints/{theirs}/health", None),
        ("PATCH", f"/endpoints/{theirs}", {"url": "http://127.0.0.1:1"}),
        ("POST", f"/endpoints/{theirs}/suspend", {"reason": "hostile takeover"}),
        ("POST", f"/endpoints/{theirs}/check", None),
    ]:
        response = call(fed, method, path, mine, body)
        assert response.status_code == 404, (method, path, response.text)
    hijack = call(fed, "POST", "/endpoints", mine, new_endpoint(theirs, "http://127.0.0.1:1"))
    assert hijack.status_code == 403
    assert fed.app.extensions["federator"].registry.get(theirs).status == "active"
    assert call(fed, "GET", "/endpoints", "practitioner").status_code == 403


@pytest.mark.parametrize("url", [
    "http://10.0.0.5/federator", "http://169.254.169.254/latest", "http://[::ffff:10.0.0.1]/",
    "ftp://127.0.0.1/", "http://user:pw@127.0.0.1/",
])
def test_unsafe_urls_are_refused_naming_url(fed: Federation, url: str) -> None:
    response = call(fed, "POST", "/endpoints", "authority-admin:newtown-cs",
                    new_endpoint("newtown-cs", url))
    assert response.status_code == 422, response.text
    assert "url" in response.json()["errors"]["json"]
    assert fed.app.extensions["federator"].registry.get("newtown-cs") is None


def test_bad_fields_are_named(fed: Federation) -> None:
    body = new_endpoint("newtown-cs", "http://127.0.0.1:1", coverage=["nowhere"],
                        protocol="carrier-pigeon", timeout_ms=5)
    errors = call(fed, "POST", "/endpoints", "authority-admin:newtown-cs", body
                  ).json()["errors"]["json"]
    assert {"coverage", "protocol", "timeout_ms"} <= set(errors)


def test_credentials_are_encrypted_and_never_shown(fed: Federation) -> None:
    admin = "authority-admin:newtown-health"
    body = {**new_endpoint("newtown-health", "http://127.0.0.1:1/R4"), "protocol": "fhir-r4",
            "coverage": ["national"], "code": "RXX"}
    missing = call(fed, "POST", "/endpoints", admin, body)
    assert missing.status_code == 422
    assert "client_secret" in missing.json()["errors"]["json"]["credentials"]
    body["credentials"] = {"token_url": "http://127.0.0.1:1/token", "client_id": "federator",
                           "client_secret": SECRET}
    created = call(fed, "POST", "/endpoints", admin, body)
    assert created.status_code == 201, created.text
    assert created.json()["credentials_stored"] is True
    for response in (created, call(fed, "GET", "/endpoints/newtown-health", admin),
                     call(fed, "GET", "/endpoints", "broker-admin")):
        assert SECRET not in response.text and "client_secret" not in response.text
    services = fed.app.extensions["federator"]
    with services.engine.connect() as conn:
        stored = conn.execute(select(endpoints.c.credentials)
                              .where(endpoints.c.id == "newtown-health")).scalar()
    assert stored and SECRET not in stored
    assert services.registry.credentials("newtown-health")["client_secret"] == SECRET
    assert SECRET not in json.dumps(services.trail.records(limit=1000))
    # new credentials send it back for approval (it points at nothing: its check is recorded)
    pass_check(fed.app, "newtown-health")
    assert call(fed, "POST", "/endpoints/newtown-health/approve", "broker-admin"
                ).json()["status"] == "active"
    # the same credentials again are no change
    same = call(fed, "PATCH", "/endpoints/newtown-health", admin,
                {"credentials": body["credentials"]})
    assert same.json()["status"] == "active"
    assert not services.trail.records(event="registry.updated", limit=10)
    again = call(fed, "PATCH", "/endpoints/newtown-health", admin,
                 {"credentials": {**body["credentials"], "client_secret": "another-one"}})
    assert again.json()["status"] == "pending"
    assert services.registry.credentials("newtown-health")["client_secret"] == "another-one"
    (updated,) = services.trail.records(event="registry.updated", limit=10)
    assert updated["changes"] == {"credentials": "changed"}
    assert "another-one" not in json.dumps(updated) and SECRET not in json.dumps(updated)
    # the test passed with the old credentials: approval is refused until tested again
    stale = call(fed, "POST", "/endpoints/newtown-health/approve", "broker-admin")
    assert stale.status_code == 409 and "credentials changed" in stale.json()["message"]


def test_check_runs_conformance_and_approval_shows_the_last_result(fed: Federation) -> None:
    authority = next(a for a in fed.world.authorities if a.behaviour == "normal").id
    admin = f"authority-admin:{authority}"
    response = call(fed, "POST", f"/endpoints/{authority}/check", admin)
    assert response.status_code == 200, response.text
    checks = {c["name"]: c["passed"] for c in response.json()["checks"]}
    assert checks["url_safe"] and checks["health"] and checks["test_lookup"]
    assert checks["bad_signature"] and checks["unsigned"] and checks["replayed"]
    assert response.json()["passed"] is True
    shown = call(fed, "GET", f"/endpoints/{authority}", "broker-admin").json()
    assert shown["last_check"]["passed"] is True
    assert {c["name"] for c in shown["last_check"]["checks"]} == set(checks)
    down = next(a for a in fed.world.authorities if a.behaviour == "down").id
    failed = call(fed, "POST", f"/endpoints/{down}/check", "broker-admin").json()
    assert failed["passed"] is False


def test_health_shows_probes_and_outcomes_without_content(fed: Federation) -> None:
    from adapters.base import OutboundClient
    from federator.registry.health import probe_all

    services = fed.app.extensions["federator"]
    results = probe_all(OutboundClient(), services.registry.all(), services.registry.health)
    by_id = {r.endpoint_id: r.ok for r in results}
    down = next(a for a in fed.world.authorities if a.behaviour == "down").id
    normal = next(a for a in fed.world.authorities if a.behaviour == "normal").id
    assert by_id[down] is False and by_id[normal] is True
    services.trail.append("lookup.completed", lookup_id="L1", outcomes=[
        {"id": normal, "outcome": "match", "latency_ms": 40, "professionals": 2},
        {"id": down, "outcome": "error", "latency_ms": 3, "professionals": 0}])
    report = call(fed, "GET", f"/endpoints/{normal}/health", f"authority-admin:{normal}").json()
    assert report["healthy"] is True
    assert report["outcomes"]["counts"]["match"] == 1
    assert report["outcomes"]["latency_ms"]["p50"] == 40
    assert "professionals" not in json.dumps(report["outcomes"])
    bad = call(fed, "GET", f"/endpoints/{down}/health", "broker-admin").json()
    assert bad["healthy"] is False and bad["outcomes"]["counts"]["error"] == 1


def test_a_staged_smart_key_is_validated_and_never_shown(fed: Federation) -> None:
    """``next_private_key``/``next_from`` (key rotation) through the API: a key that
    cannot sign or an unreadable time is refused naming the field, never echoing
    the key; usable ones are stored encrypted and never shown."""
    from adapters.smart_auth import generate_private_key

    admin = "authority-admin:newtown-health"
    key, weak = generate_private_key(), generate_private_key("RS384")[:-40] + "}"
    body = {**new_endpoint("newtown-health", "http://127.0.0.1:1/R4"), "protocol": "fhir-r4",
            "coverage": ["national"], "code": "RXX",
            "credentials": {"auth": "smart_backend", "client_id": "federator",
                            "private_key": key, "next_private_key": weak,
                            "next_from": "nan"}}
    refused = call(fed, "POST", "/endpoints", admin, body)
    assert refused.status_code == 422, refused.text
    assert set(refused.json()["errors"]["json"]["credentials"]) == {"next_private_key",
                                                                    "next_from"}
    assert weak[20:60] not in refused.text and key[20:60] not in refused.text
    services = fed.app.extensions["federator"]
    assert services.registry.get("newtown-health") is None
    staged = generate_private_key()
    body["credentials"].update(next_private_key=staged, next_from="4102444800")
    created = call(fed, "POST", "/endpoints", admin, body)
    assert created.status_code == 201, created.text
    assert services.registry.credentials("newtown-health")["next_private_key"] == staged
    shown = created.text + call(fed, "GET", "/endpoints/newtown-health", admin).text
    assert json.loads(staged)["d"] not in shown + json.dumps(services.trail.records(limit=1000))
    bad_time = call(fed, "PATCH", "/endpoints/newtown-health", admin,
                    {"credentials": {**body["credentials"], "next_from": "1.5e9"}})
    assert bad_time.status_code == 422
    assert list(bad_time.json()["errors"]["json"]["credentials"]) == ["next_from"]
