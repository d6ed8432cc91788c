"""An authority admin's account turned against the registry, through the real
parts (identity provider, broker and kits on loopback, SQLite and PostgreSQL):
widening its own endpoint sends it back to pending, so it receives nothing new
until a broker admin approves it; approval needs a passing test of the
endpoint as it is; the URL guard's never-allowed addresses stay closed
whatever FEDERATOR_ALLOWED_NETWORKS lists."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from federator.config import Settings
from federator.demo.federation import Federation, start_federation
from federator.demo.world import Authority, Child

pytestmark = pytest.mark.integration

#: opened as wide as the setting goes: the never-allowed addresses must stay closed
WIDE_OPEN = ("0.0.0.0/0", "::/0", "169.254.0.0/16", "fd00::/8", "100.64.0.0/10",
             "fec0::/10")


@pytest.fixture
def fed(tmp_path: Path, database_url: str) -> Iterator[Federation]:
    federation = start_federation(tmp_path / "demo", authorities=5, base=Settings(
        database_url=database_url, allowed_networks=WIDE_OPEN))
    yield federation
    federation.stop()


def call(fed: Federation, method: str, path: str, persona: str, body: Any = None
         ) -> requests.Response:
    return requests.request(method, f"{fed.broker.url}/api/v1/registry{path}", json=body,
                            headers={"Authorization": f"Bearer {fed.token(persona)}"},
                            timeout=30)


def normal(fed: Federation) -> list[Authority]:
    return [a for a in fed.world.authorities
            if a.behaviour == "normal" and a.coverage != ["national"]]


def asked(fed: Federation, child: Child) -> set[str]:
    """The authorities a practitioner's lookup for ``child`` was sent to."""
    response = requests.post(
        f"{fed.broker.url}/api/v1/lookups", timeout=30,
        headers={"Authorization": f"Bearer {fed.token()}"},
        json={"child": {"nhs_number": child.nhs_number, "postcodes": list(child.postcodes)},
              "purpose": "Assessment under section 17: finding services already involved",
              "basis": {"type": "consent", "given_by": "parent",
                        "given_on": (date.today() - timedelta(days=3)).isoformat(),
                        "reference": "CASE-123"},
              "include_past": True})
    assert response.status_code == 200, response.text
    return {a["id"] for a in response.json()["authorities"]}


def records(fed: Federation, event: str, endpoint_id: str) -> list[dict[str, Any]]:
    trail = fed.app.extensions["federator"].trail
    return [r for r in trail.records(event=event, limit=1000) if r["endpoint"] == endpoint_id]


def test_an_authority_admin_widening_to_national_under_another_name_receives_nothing(
        fed: Federation) -> None:
    attacker, victim = normal(fed)[:2]
    admin = f"authority-admin:{attacker.id}"
    child = next(c for c in fed.world.children if c.known_to == [victim.id])
    assert attacker.id not in asked(fed, child)

    hijack = call(fed, "PATCH", f"/endpoints/{attacker.id}", admin,
                  {"coverage": ["national"], "name": victim.name, "code": victim.code})
    assert hijack.status_code == 200, hijack.text
    shown = hijack.json()
    assert shown["status"] == "pending" and shown["coverage"] == ["national"]
    assert "coverage widened to national" in shown["status_reason"]
    assert f'to "{victim.name}"' in shown["status_reason"]
    # the next lookup for a child elsewhere is not sent to it (nor to its own area's)
    assert attacker.id not in asked(fed, child)

    # the trail says what was asked for, from what, and by whom
    (updated,) = records(fed, "registry.updated", attacker.id)
    assert updated["actor_id"] and updated["actor_role"] == "authority-admin"
    assert updated["changes"]["coverage"] == {"old": attacker.coverage, "new": ["national"]}
    assert updated["changes"]["name"] == {"old": attacker.name, "new": victim.name}
    assert updated["changes"]["code"] == {"old": attacker.code, "new": victim.code}
    assert set(updated["widened"]) == {"coverage", "name", "code"}
    assert (updated["status_before"], updated["status"]) == ("active", "pending")

    # the authority admin cannot approve it; a broker admin can, after a passing test,
    # and the approval says what was granted
    assert call(fed, "POST", f"/endpoints/{attacker.id}/approve", admin).status_code == 403
    assert call(fed, "POST", f"/endpoints/{attacker.id}/check", admin).json()["passed"]
    granted = call(fed, "POST", f"/endpoints/{attacker.id}/approve", "broker-admin")
    assert granted.status_code == 200 and granted.json()["status"] == "active"
    (approved,) = records(fed, "registry.approved", attacker.id)
    assert approved["actor_role"] == "broker-admin"
    assert approved["approved"]["coverage"] == ["national"]
    assert approved["approved"]["name"] == victim.name
    assert approved["check_at"] == granted.json()["last_check"]["at"]
    assert attacker.id in asked(fed, child)  # granted: now it is asked


def test_narrowing_applies_at_once_and_gaining_an_area_waits(fed: Federation) -> None:
    authority = normal(fed)[0]
    admin = f"authority-admin:{authority.id}"
    path = f"/endpoints/{authority.id}"
    wider = [*authority.coverage, "E08000099"]
    gained = call(fed, "PATCH", path, admin, {"coverage": wider}).json()
    assert gained["status"] == "pending"
    assert "coverage gains E08000099" in gained["status_reason"]
    assert call(fed, "POST", f"{path}/check", admin).json()["passed"]
    assert call(fed, "POST", f"{path}/approve", "broker-admin").json()["coverage"] == wider
    # an area removed: active at once
    narrowed = call(fed, "PATCH", path, admin, {"coverage": authority.coverage}).json()
    assert narrowed["status"] == "active" and narrowed["coverage"] == authority.coverage
    assert records(fed, "registry.updated", authority.id)[-1]["widened"] == []
    # nor do a contact or a time limit widen
    same = call(fed, "PATCH", path, admin, {"contact": "Front door 0100", "timeout_ms": 2500})
    assert same.json()["status"] == "active"
    assert records(fed, "registry.updated", authority.id)[-1]["changes"]["contact"] == {
        "old": narrowed["contact"], "new": "Front door 0100"}
    # an area swapped for another gains one: pending
    swapped = call(fed, "PATCH", path, admin, {"coverage": ["E08000098"]}).json()
    assert swapped["status"] == "pending"
    assert "coverage gains E08000098" in swapped["status_reason"]


def test_approval_is_refused_without_a_passing_test_of_the_endpoint_as_it_is(
        fed: Federation) -> None:
    good, other = normal(fed)[:2]
    down = next(a for a in fed.world.authorities if a.behaviour == "down")
    services = fed.app.extensions["federator"]
    good_url = services.registry.get(good.id).url

    def approve(endpoint_id: str, body: Any = None) -> requests.Response:
        return call(fed, "POST", f"/endpoints/{endpoint_id}/approve", "broker-admin", body)

    # never tested since its new address
    admin = f"authority-admin:{good.id}"
    moved = good_url.replace("127.0.0.1", "localhost")
    assert call(fed, "PATCH", f"/endpoints/{good.id}", admin,
                {"url": moved}).json()["status"] == "pending"
    never = approve(good.id)
    assert never.status_code == 409 and "never been tested" in never.json()["message"]
    # passed, then the address changed again: the pass was of another endpoint
    assert call(fed, "POST", f"/endpoints/{good.id}/check", admin).json()["passed"]
    assert call(fed, "PATCH", f"/endpoints/{good.id}", admin,
                {"url": services.registry.get(other.id).url}).status_code == 200
    stale = approve(good.id)
    assert stale.status_code == 409 and "changed since it last passed" in stale.json()["message"]
    # tested there: it fails (another authority's kit refuses this audience)
    failed = call(fed, "POST", f"/endpoints/{good.id}/check", admin).json()
    assert failed["passed"] is False
    refused = approve(good.id)
    assert refused.status_code == 409 and "last test failed" in refused.json()["message"]
    # a down endpoint, tested and failing
    down_admin = f"authority-admin:{down.id}"
    call(fed, "PATCH", f"/endpoints/{down.id}", down_admin,
         {"url": services.registry.get(down.id).url.replace("127.0.0.1", "localhost")})
    assert call(fed, "POST", f"/endpoints/{down.id}/check", down_admin).json()["passed"] is False
    assert approve(down.id).status_code == 409
    # back at its own kit and tested: approved
    call(fed, "PATCH", f"/endpoints/{good.id}", admin, {"url": good_url})
    assert call(fed, "POST", f"/endpoints/{good.id}/check", admin).json()["passed"]
    assert approve(good.id).json()["status"] == "active"
    assert [r["status"] for r in records(fed, "registry.approved", good.id)] == ["active"]
    assert services.registry.get(down.id).status == "pending"


def test_a_widening_while_the_approver_reads_is_not_approved(fed: Federation) -> None:
    authority = normal(fed)[0]
    admin = f"authority-admin:{authority.id}"
    path = f"/endpoints/{authority.id}"
    call(fed, "PATCH", path, admin, {"name": "Newtown Children's Services"})
    assert call(fed, "POST", f"{path}/check", admin).json()["passed"]
    read = call(fed, "GET", path, "broker-admin").json()
    assert read["approval_problem"] is None
    # the authority admin widens to national while the broker admin reads: the test
    # still holds (same address), but what was read is no longer what is there
    assert call(fed, "PATCH", path, admin, {"coverage": ["national"]}).status_code == 200
    late = call(fed, "POST", f"{path}/approve", "broker-admin", {"version": read["version"]})
    assert late.status_code == 409 and "changed since you read" in late.json()["message"]
    assert fed.app.extensions["federator"].registry.get(authority.id).status == "pending"
    again = call(fed, "GET", path, "broker-admin").json()
    assert "coverage widened to national" in again["status_reason"]
    assert "name changed" in again["status_reason"]  # the earlier widening is kept
    ok = call(fed, "POST", f"{path}/approve", "broker-admin", {"version": again["version"]})
    assert ok.status_code == 200 and ok.json()["coverage"] == ["national"]


@pytest.mark.parametrize("url", [
    "http://169.254.169.254/latest/meta-data", "http://[fd00:ec2::254]/latest",
    "http://100.100.100.200/latest", "http://[fec0::1]/", "http://[::ffff:169.254.169.254]/",
    "http://[64:ff9b::a9fe:a9fe]/", "http://0.0.0.0:8080/", "http://[ff02::1]/",
    "http://168.63.129.16/machine",
])
def test_never_allowed_addresses_stay_refused_with_every_network_allowed(
        fed: Federation, url: str) -> None:
    authority = normal(fed)[0]
    admin = f"authority-admin:{authority.id}"
    response = call(fed, "PATCH", f"/endpoints/{authority.id}", admin, {"url": url})
    assert response.status_code == 422, response.text
    assert "url" in response.json()["errors"]["json"]
    assert fed.app.extensions["federator"].registry.get(authority.id).url != url


def test_allowed_networks_still_open_a_private_address(fed: Federation) -> None:
    authority = normal(fed)[0]
    response = call(fed, "PATCH", f"/endpoints/{authority.id}", f"authority-admin:{authority.id}",
                    {"url": "http://10.20.30.40:8080/federator"})
    assert response.status_code == 200 and response.json()["status"] == "pending"
