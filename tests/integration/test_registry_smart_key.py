"""``federator registry smart-key``: makes a SMART Backend Services key for a FHIR
endpoint, stores it encrypted with the endpoint's credentials (audited), prints
only the public JWKS; a FHIR server that registers that JWKS then serves the
broker (the loopback server of ``support/fhir_server.py``)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from flask import Flask
from support.fhir_server import FhirServer, deadline, payload, serve
from support.web_client import pass_check

from adapters.base import Target
from adapters.fhir_r4 import FhirR4Client
from federator import create_app
from federator.cli import main
from federator.config import Settings

pytestmark = pytest.mark.integration


fhir_server = pytest.fixture(serve, name="fhir_server")


@pytest.fixture
def app(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        fhir_server: FhirServer) -> Iterator[Flask]:
    values = {"FEDERATOR_ENV": "development", "FEDERATOR_INSTANCE_DIR": str(tmp_path),
              "FEDERATOR_DATABASE_URL": database_url, "FEDERATOR_AUDIT_KEY": "a" * 40,
              "FEDERATOR_SECRET_KEY": "s" * 40}
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    seed = tmp_path / "seed.toml"
    seed.write_text(f'''
[[endpoint]]
id = "kirklees-health"
name = "Kirklees Community Health"
code = "RXX"
coverage = ["national"]
protocol = "fhir-r4"
url = "{fhir_server.base}"
[endpoint.credentials]
token_url = "{fhir_server.url}/token"
client_id = "old-client"
client_secret = "old-secret-value"
''')
    flask_app = create_app(Settings.from_env(), migrate=True)
    services = flask_app.extensions["federator"]
    services.registry.seed(seed, services.trail)
    yield flask_app
    flask_app.extensions["federator"].engine.dispose()


def run(*args: str) -> tuple[dict, str]:
    result = CliRunner().invoke(main, ["registry", "smart-key", *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout), result.stderr


def test_smart_key_stores_the_private_key_and_prints_the_public_jwks(
        app: Flask, fhir_server: FhirServer) -> None:
    jwks, note = run("kirklees-health", "--client-id", "federator")
    (key,) = jwks["keys"]
    assert key["kty"] == "EC" and key["crv"] == "P-384" and key["alg"] == "ES384"
    assert "d" not in key and "status pending" in note
    services = app.extensions["federator"]
    creds = services.registry.credentials("kirklees-health")
    assert creds["auth"] == "smart_backend" and creds["client_id"] == "federator"
    assert "client_secret" not in creds and json.loads(creds["private_key"])["d"]
    assert json.loads(creds["private_key"])["d"] not in json.dumps(jwks) + note
    events = [r for r in services.trail.records(limit=100) if r["event"] == "registry.updated"]
    assert len(events) == 1 and creds["private_key"] not in json.dumps(events)

    # asked again: the same public key, nothing changed
    again, _ = run("kirklees-health")
    assert again == jwks
    assert services.registry.credentials("kirklees-health") == creds

    # the authority registers the JWKS: the stored credentials now get lookups answered
    fhir_server.smart_jwks = jwks
    client = FhirR4Client(user_agent="federator-test")
    try:
        target = Target(id="kirklees-health", url=fhir_server.base, timeout_ms=3000,
                        credentials=creds)
        assert client.lookup(target, payload(), deadline=deadline())["status"] == "match"
    finally:
        client.close()
    assert fhir_server.refusals == [] and len(fhir_server.assertions) == 1

    # --new rotates: another key, RS384 when asked
    rotated, _ = run("kirklees-health", "--new", "--alg", "RS384")
    assert rotated["keys"][0]["kid"] != key["kid"] and rotated["keys"][0]["alg"] == "RS384"


def test_smart_key_refuses_an_unknown_endpoint(app: Flask) -> None:
    result = CliRunner().invoke(main, ["registry", "smart-key", "nobody"])
    assert result.exit_code == 1 and "no endpoint nobody" in result.output


def lookup(app: Flask, fhir_server: FhirServer) -> str:
    """A lookup with the credentials the broker's lookups get (as in force now)."""
    creds = app.extensions["federator"].registry.credentials("kirklees-health")
    client = FhirR4Client(user_agent="federator-test")
    try:
        target = Target(id="kirklees-health", url=fhir_server.base, timeout_ms=3000,
                        credentials=creds)
        return str(client.lookup(target, payload(), deadline=deadline())["status"])
    finally:
        client.close()


def status(app: Flask) -> str:
    shown = app.extensions["federator"].registry.describe_one("kirklees-health")
    assert shown is not None
    return str(shown["status"])


def test_rotation_publishes_the_new_key_while_the_old_one_signs_until_retired(
        app: Flask, fhir_server: FhirServer) -> None:
    from adapters.base import AdapterError

    services = app.extensions["federator"]
    first, _ = run("kirklees-health", "--client-id", "federator")
    pass_check(app, "kirklees-health")
    services.registry.transition("kirklees-health", "approve", None,
                                 {"actor_id": "b1", "actor_role": "broker-admin"}, services.trail)
    fhir_server.smart_jwks = first
    assert lookup(app, fhir_server) == "match"
    old_d = json.loads(services.registry.credentials("kirklees-health")["private_key"])["d"]

    both, note = run("kirklees-health", "--new", "--overlap", "3600")
    assert [k["kid"] for k in both["keys"]][1:] == [first["keys"][0]["kid"]]
    assert "old key signs until" in note and "status active" in note
    assert status(app) == "active"  # the old key still signs: lookups go on
    assert lookup(app, fhir_server) == "match"  # the server knows only the old key yet
    assert run("kirklees-health")[0] == both  # asked again: the same two keys
    stored = services.registry.credentials("kirklees-health")
    assert old_d not in json.dumps(both) and json.loads(stored["next_private_key"])["d"] \
        not in json.dumps(both) + note

    # the authority registers both; retired: the new key signs, alone
    fhir_server.smart_jwks = both
    retired, note = run("kirklees-health", "--retire")
    assert retired == {"keys": both["keys"][:1]} and "status active" in note
    assert lookup(app, fhir_server) == "match"
    fhir_server.smart_jwks = first  # the old key alone no longer verifies the broker
    with pytest.raises(AdapterError, match="refused the SMART client assertion"):
        lookup(app, fhir_server)
    again = CliRunner().invoke(main, ["registry", "smart-key", "kirklees-health", "--retire"])
    assert again.exit_code == 1 and "no new key in overlap" in again.output

    # with a short overlap the new key takes over by itself when it ends
    staged, _ = run("kirklees-health", "--new", "--overlap", "1")
    assert len(staged["keys"]) == 2
    time.sleep(1.1)
    after, _ = run("kirklees-health")
    assert after == {"keys": staged["keys"][:1]}
    fhir_server.smart_jwks = after
    assert lookup(app, fhir_server) == "match" and status(app) == "active"
    events = services.trail.records(event="registry.updated", limit=10)
    assert len(events) == 4 and old_d not in json.dumps(events)

    # --overlap 0 replaces the key at once, and that needs approval again
    replaced, note = run("kirklees-health", "--new", "--overlap", "0")
    assert len(replaced["keys"]) == 1 and replaced != after and "status pending" in note
