"""``federator keys rotate`` with the real adapter kit: a kit that cached the old
JWKS keeps accepting the broker's lookups through a rotation."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import requests

from federator.config import Settings
from federator.demo.federation import Federation, start_federation
from federator.demo.world import Child
from federator.signing import read_ring, rotate

pytestmark = pytest.mark.integration


def known_to_several(fed: Federation) -> Child:
    normal = {a.id for a in fed.world.authorities if a.behaviour == "normal"}
    return next(c for c in fed.world.children
                if not c.shielded and len(set(c.known_to) & normal) >= 1)


def lookup(fed: Federation, child: Child) -> dict:
    body = {"child": {"nhs_number": child.nhs_number, "postcodes": list(child.postcodes)},
            "purpose": "Assessment under section 17: finding services already involved",
            "basis": {"type": "statutory", "power": "children-act-1989-s17",
                      "reference": "CASE-1"},
            "scope": "all", "scope_reason": "Every authority signs with its own key here",
            "include_past": True}
    response = requests.post(f"{fed.broker.url}/api/v1/lookups", json=body, timeout=30,
                             headers={"Authorization": f"Bearer {fed.token()}"})
    assert response.status_code == 200, response.text
    return response.json()


def test_kits_keep_answering_through_a_key_rotation(tmp_path: Path) -> None:
    fed = start_federation(tmp_path / "demo", authorities=4, base=Settings())
    try:
        child = known_to_several(fed)
        normal = {a.id for a in fed.world.authorities if a.behaviour == "normal"}
        before = lookup(fed, child)
        matched = {a["id"] for a in before["authorities"] if a["outcome"] == "match"} & normal
        assert matched
        key_file = fed.settings.instance_dir / "signing-key.jwk.json"
        old_kid = fed.app.extensions["federator"].keys.key.kid
        new = rotate(key_file, overlap_s=3600)
        time.sleep(1.2)  # brokers notice the new file within a second
        jwks = requests.get(f"{fed.broker.url}/.well-known/jwks.json", timeout=5).json()
        assert {k["kid"] for k in jwks["keys"]} == {old_kid, new.key.kid}
        assert fed.app.extensions["federator"].keys.key.kid == new.key.kid
        time.sleep(10)  # the kit re-fetches on an unknown kid at most every 10 s
        after = lookup(fed, child)
        outcomes = {a["id"]: a["outcome"] for a in after["authorities"]}
        assert all(outcomes[a] == "match" for a in matched), outcomes
    finally:
        fed.stop()


def test_an_old_single_key_file_rotates_and_retires(tmp_path: Path) -> None:
    from adapters.protocol import generate_signing_key
    from federator.signing import BrokerKeys

    path = tmp_path / "key.json"
    path.write_text(json.dumps(generate_signing_key("old").as_dict(private=True)))
    rotate(path, overlap_s=100, now=1000.0)
    keys = BrokerKeys(read_ring(path), "federator", clock=lambda: 1050.0)
    assert keys.key.kid != "old"
    assert {k["kid"] for k in keys.jwks()["keys"]} == {"old", keys.key.kid}
    later = BrokerKeys(read_ring(path), "federator", clock=lambda: 1101.0)
    assert {k["kid"] for k in later.jwks()["keys"]} == {keys.key.kid}
    rotate(path, overlap_s=100, now=1200.0)
    ring = read_ring(path)
    assert [k.private for k in ring] == [False, True, True]  # the retired one lost its private half
    assert "old" in {k["kid"] for k in later.history_jwks()["keys"]}
    assert oct(path.stat().st_mode & 0o777) == "0o600"
