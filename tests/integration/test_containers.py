"""deploy/containers, exercised: both images built (from a base image made with
mmdebstrap, no registry), run as their non-root users, their healthchecks pass,
and a lookup goes through the broker's container to the kit's container.

The containers use the host's network here (the test's PostgreSQL, Redis and
development identity provider are on loopback); compose.yaml's own network,
PostgreSQL and Redis containers are not run (docs/deploy.md). Skipped, with the
reason, where podman cannot run a container. Slow the first time (images: about
2 minutes), so marked ``containers``.
"""

from __future__ import annotations

import json
import shutil
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from support.budget import UNLIMITED
from support.containers import ULIMITS, podman, project_images, why_podman_cannot_run
from support.log_capture import identity_strings, leaks
from support.named_children import add_named_children, lookup_body

from federator.config import Settings
from federator.demo.federation import Federation, start_federation
from federator.demo.files import BROKER_ISSUER

pytestmark = [pytest.mark.integration, pytest.mark.containers]

BROKER_UID, KIT_UID = 10001, 10002


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    reason = why_podman_cannot_run()
    if reason:
        pytest.skip(reason)
    return project_images(tmp_path_factory.mktemp("containers"))


@pytest.fixture
def federation(tmp_path: Path, database_url: str, redis_url: str, redis_prefix: str
               ) -> Iterator[Federation]:
    fed = start_federation(tmp_path / "fed", base=Settings(
        database_url=database_url, redis_url=redis_url, redis_prefix=redis_prefix,
        **UNLIMITED, deadline_default_ms=8000))
    yield fed
    fed.stop()


class Running:
    def __init__(self) -> None:
        self.names: list[str] = []

    def start(self, *args: str) -> str:
        name = f"federator-test-{uuid.uuid4().hex[:10]}"
        podman("run", "--detach", "--name", name, "--network", "host", *ULIMITS, *args)
        self.names.append(name)
        return name

    def logs(self, name: str) -> list[str]:
        out = podman("logs", name, check=False)
        return (out.stdout + out.stderr).splitlines()

    def stop(self) -> None:
        for name in self.names:
            podman("rm", "--force", "--time", "5", name, check=False)


def _wait(url: str, name: str, running: Running, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        state = podman("inspect", "--format", "{{.State.Status}}", name, check=False)
        if state.stdout.strip() not in ("running", "created"):
            pytest.fail(f"{name} exited:\n" + "\n".join(running.logs(name)[-40:]))
        time.sleep(0.5)
    pytest.fail(f"{url} not ready:\n" + "\n".join(running.logs(name)[-40:]))


def _secret_dir(path: Path, uid: int) -> Path:
    """A directory of files only ``uid`` reads (what a secret mount looks like)."""
    path.chmod(0o700)
    for item in (path, *path.iterdir()):
        shutil.chown(item, uid, uid)
        if item.is_file():
            item.chmod(0o600)
    return path


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_lookup_through_the_broker_and_kit_containers(images: dict[str, str],
                                                      federation: Federation,
                                                      tmp_path: Path) -> None:
    named = add_named_children(federation)
    authority = named[0].authority
    csv_path = federation.files.csv_paths[authority]
    broker_port, kit_port = _free_port(), _free_port()
    broker_url, kit_url = f"http://127.0.0.1:{broker_port}", f"http://127.0.0.1:{kit_port}"

    kit_conf = tmp_path / "kit-conf"
    kit_conf.mkdir()
    (kit_conf / "kit.toml").write_text(
        f'authority_id = "{authority}"\nname = "In a container"\n'
        f'jwks_url = "{broker_url}/.well-known/jwks.json"\n'
        f'broker_issuer = "{BROKER_ISSUER}"\nsource = "csv"\n'
        f'csv_path = "/var/lib/federator-adapter/data/{csv_path.name}"\n'
        'audit_log_path = "/var/lib/federator-adapter/audit.jsonl"\n', encoding="utf-8")
    kit_conf.chmod(0o755)

    s = federation.settings
    secrets = tmp_path / "broker-secrets"
    secrets.mkdir()
    shutil.copy(federation.directory / "signing-key.jwk.json", secrets / "signing-key.jwk.json")
    _secret_dir(secrets, BROKER_UID)
    seed = tmp_path / "seed"
    seed.mkdir()
    entry = next(e for e in _seed_entries(federation) if e["id"] == authority)
    (seed / "registry.toml").write_text(_endpoint_toml({**entry, "url": kit_url}),
                                        encoding="utf-8")
    seed.chmod(0o755)
    env_file = tmp_path / "broker.env"  # what compose's env_file holds
    env_file.write_text("\n".join(f"{k}={v}" for k, v in {
        "FEDERATOR_ENV": "development",  # the kit and the identity provider are http here
        "FEDERATOR_DATABASE_URL": str(s.database_url), "FEDERATOR_REDIS_URL": str(s.redis_url),
        "FEDERATOR_REDIS_PREFIX": s.redis_prefix,
        "FEDERATOR_SECRET_KEY": s.secret_key, "FEDERATOR_AUDIT_KEY": s.audit_key,
        "FEDERATOR_SIGNING_KEY_FILE": "/run/secrets/federator/signing-key.jwk.json",
        "FEDERATOR_BROKER_ID": s.broker_id, "FEDERATOR_PUBLIC_URL": broker_url,
        "FEDERATOR_OIDC_ISSUER": str(s.oidc_issuer), "FEDERATOR_OIDC_CLIENT_ID": s.oidc_client_id,
        "FEDERATOR_OIDC_CLIENT_SECRET": str(s.oidc_client_secret),
        "FEDERATOR_OIDC_AUDIENCE": s.oidc_audience,
        "FEDERATOR_REGISTRY_SEED": "/etc/federator/registry.toml",
        "FEDERATOR_LOOKUPS_PER_MINUTE": "1000", "FEDERATOR_DEADLINE_DEFAULT_MS": "8000",
    }.items()) + "\n", encoding="utf-8")
    broker_args = ["--env-file", str(env_file),
                   "--volume", f"{secrets}:/run/secrets/federator:ro",
                   "--volume", f"{seed}:/etc/federator:ro"]

    running = Running()
    try:
        # The one-off migration run of the broker's image (compose's `migrate`).
        podman("run", "--rm", "--network", "host", *ULIMITS, *broker_args, images["broker"],
               "federator", "db", "upgrade", timeout=180)
        kit = running.start("--volume", f"{kit_conf}:/etc/federator-adapter:ro",
                            "--volume", f"{csv_path.parent}:/var/lib/federator-adapter/data:ro",
                            images["adapter"], "federator-adapter", "serve", "--config",
                            "/etc/federator-adapter/kit.toml", "--host", "127.0.0.1",
                            "--port", str(kit_port))
        broker = running.start(*broker_args, images["broker"], "federator", "serve",
                               "--bind", f"127.0.0.1:{broker_port}", "--workers", "2",
                               "--allow-development")
        _wait(f"{kit_url}/health", kit, running)
        _wait(f"{broker_url}/readyz", broker, running)

        for name, uid in ((broker, BROKER_UID), (kit, KIT_UID)):
            assert podman("exec", name, "id", "-u").stdout.strip() == str(uid)
        # The images' HEALTHCHECKs on their own ports (8000, 8080) are compose's; here
        # the ports are the test's, so run the same check against them.
        for name, url in ((broker, f"{broker_url}/healthz"), (kit, f"{kit_url}/health")):
            check = podman("exec", name, "python3", "-c",
                           f"import urllib.request; urllib.request.urlopen('{url}', timeout=2)",
                           check=False)
            assert check.returncode == 0, check.stderr

        children = [n.child() for n in named[:3]]
        token = federation.token()
        lookup_ids = []
        for child in children:
            response = requests.post(f"{broker_url}/api/v1/lookups", json=lookup_body(child),
                                     headers={"Authorization": f"Bearer {token}"}, timeout=30)
            assert response.status_code == 200, response.text
            answer = response.json()
            outcomes = {a["id"]: a["outcome"] for a in answer["authorities"]}
            assert outcomes[authority] == "match", answer
            lookup_ids.append(answer["lookup_id"])

        trail = federation.app.extensions["federator"].trail
        for lookup_id in lookup_ids:
            events = {r["event"] for r in trail.records(lookup_id=lookup_id)}
            assert events == {"lookup.requested", "lookup.completed"}, lookup_id
        assert trail.verify().ok
        kit_lines = running.logs(kit)
        assert any(lookup_ids[0] in line for line in kit_lines), kit_lines[-20:]
        lines = kit_lines + running.logs(broker)
        assert leaks(lines, identity_strings(children)) == []
    finally:
        running.stop()


def test_broker_image_refuses_to_start_without_production_settings(images: dict[str, str]):
    """The image defaults to FEDERATOR_ENV=production: with nothing set it stops,
    naming what is missing, rather than making up secrets."""
    result = podman("run", "--rm", *ULIMITS, images["broker"], check=False, timeout=120)
    assert result.returncode != 0
    for missing in ("FEDERATOR_SECRET_KEY", "FEDERATOR_AUDIT_KEY", "FEDERATOR_SIGNING_KEY_FILE"):
        assert missing in result.stderr
    assert "Traceback" not in result.stderr


def _seed_entries(federation: Federation) -> list[dict]:
    import tomllib
    return tomllib.loads(federation.files.registry_path.read_text(encoding="utf-8"))["endpoint"]


def _endpoint_toml(entry: dict) -> str:
    return "[[endpoint]]\n" + "".join(f"{k} = {json.dumps(v, ensure_ascii=False)}\n"
                                      for k, v in entry.items())
