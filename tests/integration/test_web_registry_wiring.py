"""The registry's safety wiring through the real parts: the URL guard at connect
time in lookups and conformance checks, a seeded FHIR endpoint's credentials,
and seeding from several processes at once."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import func, select
from support.fhir_server import CLIENT_ID, CLIENT_SECRET, NHS, FhirServer

from federator.demo.federation import Federation, start_federation
from federator.demo.files import toml_array_of_tables
from federator.registry.conformance import check_and_record
from federator.registry.secrets import development_key
from federator.registry.service import SeedError, parse_seed
from federator.storage import endpoints, make_engine, upgrade

pytestmark = pytest.mark.integration

ACTOR = {"actor_id": "test-admin", "actor_role": "broker-admin"}


@pytest.fixture
def federation(tmp_path: Path) -> Iterator[Federation]:
    fed = start_federation(tmp_path / "demo", authorities=4)
    yield fed
    fed.stop()


def consent() -> dict[str, Any]:
    return {"type": "consent", "given_by": "parent",
            "given_on": (date.today() - timedelta(days=3)).isoformat(),
            "reference": "CASE-123", "covers_sensitive_services": False}


def lookup(fed: Federation, child: dict[str, Any]) -> dict[str, Any]:
    response = requests.post(
        f"{fed.broker.url}/api/v1/lookups", timeout=30,
        headers={"Authorization": f"Bearer {fed.token()}"},
        json={"child": child, "purpose": "Assessment under section 17: services involved",
              "basis": consent(), "include_past": True})
    assert response.status_code == 200, response.text
    return dict(response.json())


def outcome_of(answer: dict[str, Any], endpoint_id: str) -> dict[str, Any]:
    return next(a for a in answer["authorities"] if a["id"] == endpoint_id)


def known_child(fed: Federation) -> tuple[str, dict[str, Any]]:
    """A live authority, and a child it knows (as a lookup's ``child``)."""
    for child in fed.world.children:
        for authority in child.known_to:
            if fed.world.authority(authority).behaviour == "normal" and not child.shielded:
                return authority, {"nhs_number": child.nhs_number,
                                   "postcodes": list(child.postcodes)}
    raise AssertionError("no child known to a live authority")


def rename_host(fed: Federation, endpoint_id: str, host: str) -> None:
    """Move an endpoint to a host name (as its admin would), tested while the name
    resolves to the kit on loopback, and approved again."""
    services = fed.app.extensions["federator"]
    url = services.registry.get(endpoint_id).url
    port = url.rsplit(":", 1)[1]
    services.registry.change(endpoint_id, {"url": f"http://{host}:{port}"}, ACTOR,
                             services.trail)
    guard = services.registry.guard
    before, guard.resolver = guard.resolver, resolving({host: "127.0.0.1"})
    try:
        endpoint = services.registry.get(endpoint_id)
        assert check_and_record(services.registry, services.keys, services.trail, endpoint,
                                ACTOR)["passed"] is True
    finally:
        guard.resolver = before
    services.registry.transition(endpoint_id, "approve", None, ACTOR, services.trail)


def resolving(names: dict[str, str]) -> Callable[[str, int], list[str]]:
    """A resolver (in place of DNS) for the test's host names."""
    def resolve(host: str, port: int) -> list[str]:
        return [names[host]]
    return resolve


def test_every_connection_re_checks_the_address_the_name_resolves_to(
        federation: Federation) -> None:
    authority, child = known_child(federation)
    guard = federation.app.extensions["federator"].registry.guard
    guard.resolver = resolving({"good.authority.test": "127.0.0.1",  # loopback: development
                                "rebound.authority.test": "169.254.169.254"})

    rename_host(federation, authority, "good.authority.test")
    assert outcome_of(lookup(federation, child), authority)["outcome"] == "match"

    # a name that resolves to the cloud metadata address when the broker connects
    rename_host(federation, authority, "rebound.authority.test")
    refused = outcome_of(lookup(federation, child), authority)
    assert refused["outcome"] == "error"
    assert refused["detail"] == "address not allowed"


def test_conformance_checks_connect_only_to_allowed_addresses(federation: Federation) -> None:
    authority, _ = known_child(federation)
    rename_host(federation, authority, "adapter.authority.test")
    services = federation.app.extensions["federator"]
    services.registry.guard.resolver = resolving({"adapter.authority.test": "127.0.0.1"})
    endpoint = services.registry.get(authority)
    assert endpoint is not None
    allowed = iter([["127.0.0.1"]])  # the first look-up (registration check) is safe,

    def rebinding(host: str, port: int) -> list[str]:
        return next(allowed, ["169.254.169.254"])  # every connection after it is not

    services.registry.guard.resolver = rebinding
    result = check_and_record(services.registry, services.keys, services.trail, endpoint,
                              ACTOR)
    checks = {c["name"]: c for c in result["checks"]}
    assert checks["url_safe"]["passed"] is True
    assert checks["health"]["passed"] is False
    assert "the address is not one the broker may connect to" in checks["health"]["detail"]
    assert result["passed"] is False

    services.registry.guard.resolver = resolving({"adapter.authority.test": "127.0.0.1"})
    assert check_and_record(services.registry, services.keys, services.trail, endpoint,
                            ACTOR)["passed"] is True


@pytest.fixture
def fhir_server() -> Iterator[FhirServer]:
    server = FhirServer()
    yield server
    server.close()


@pytest.mark.parametrize("secret, expected", [(CLIENT_SECRET, "match"), ("wrong", "error")])
def test_a_seeded_fhir_endpoint_is_asked_with_its_stored_credentials(
        tmp_path: Path, fhir_server: FhirServer, secret: str, expected: str) -> None:
    seed = tmp_path / "fhir.toml"
    seed.write_text(toml_array_of_tables("endpoint", [{
        "id": "kirklees-health", "name": "Kirklees Health", "code": "RXF",
        "coverage": ["national"], "protocol": "fhir-r4", "url": fhir_server.base,
        "timeout_ms": 5000, "contact": "fhir@example.org",
        "credentials": {"token_url": f"{fhir_server.url}/token", "client_id": CLIENT_ID,
                        "client_secret": secret}}]))
    fed = start_federation(tmp_path / "demo", authorities=4, extra_seed=seed)
    try:
        stored = fed.app.extensions["federator"].registry.describe_one("kirklees-health")
        assert stored is not None and stored["credentials_stored"] is True
        assert secret not in json.dumps(stored)
        outcome = outcome_of(lookup(fed, {"nhs_number": NHS, "postcodes": []}),
                             "kirklees-health")
        assert outcome["outcome"] == expected, outcome
        if expected == "match":
            answer = lookup(fed, {"nhs_number": NHS, "postcodes": []})
            assert "Rita Shah" in {p["name"] for p in answer["professionals"]}
            assert fhir_server.token_requests >= 1
    finally:
        fed.stop()


SEEDER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from federator.audit.setup import make_trail
    from federator.config import Settings
    from federator.registry.setup import make_registry
    from federator.storage import make_engine
    url, instance, seed = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    start = float(sys.argv[4])
    settings = Settings(env="development", instance_dir=instance, database_url=url,
                        secret_key="s" * 40, audit_key="a" * 40).checked()
    engine = make_engine(settings.sqlalchemy_url, instance)
    registry = make_registry(engine, settings)
    trail = make_trail(engine, settings)
    while time.time() < start:
        time.sleep(0.001)
    print(len(registry.seed(seed, trail)))
""")


def test_two_processes_seeding_an_empty_database_at_once_both_succeed(
        tmp_path: Path, database_url: str) -> None:
    engine = make_engine(database_url, tmp_path)
    upgrade(engine)
    seed = tmp_path / "seed.toml"
    seed.write_text(toml_array_of_tables("endpoint", [{
        "id": f"authority-{n:03}", "name": f"Authority {n}", "code": f"E{n:08}",
        "coverage": [f"E{n:08}"], "protocol": "federator-lookup/1",
        "url": f"http://127.0.0.1:{20000 + n}", "timeout_ms": 3000}
        for n in range(60)]))
    development_key(tmp_path)  # made once here, as `federator db upgrade` would
    for _ in range(3):  # a few rounds: the race is timing-dependent
        start = time.time() + 4
        seeders = [subprocess.Popen(
            [sys.executable, "-c", SEEDER, database_url, str(tmp_path), str(seed), str(start)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
        for process in seeders:
            out, err = process.communicate(timeout=60)
            assert process.returncode == 0, err[-2000:]
            assert out.strip() == "60"
        with engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(endpoints)).scalar() == 60
        with engine.begin() as conn:  # empty again for the next round
            conn.execute(endpoints.delete())
    engine.dispose()


def test_the_seed_accepts_every_installed_adapter_kind(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    entry = {"id": "plug-in-authority", "name": "Plug-in", "code": "E08000099",
             "coverage": ["E08000099"], "protocol": "example-kind",
             "url": "https://adapter.example.org"}
    seed = toml_array_of_tables("endpoint", [entry]).encode()
    with pytest.raises(SeedError, match="'protocol' must be one of"):
        parse_seed(seed)
    # install a distribution offering the kind (as pip would: a dist-info on the path)
    dist = tmp_path / "example_kind-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: example-kind\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        "[federator.adapters]\nexample-kind = federator_example_kind:Client\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert [e["protocol"] for e in parse_seed(seed)] == ["example-kind"]
