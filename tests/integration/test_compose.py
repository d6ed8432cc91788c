"""deploy/containers/compose.yaml brought up with podman-compose: PostgreSQL and Redis
with their passwords from env files, the one-off migration, the broker (read-only
root, the signing key as a secret file) and a kit, on compose's own network.
The broker is ready (database and Redis reached through that network) and every
service's healthcheck passes.

PostgreSQL's and Redis' official images cannot be pulled here: the test uses
stand-ins made from Debian's packages (tests/support/standins). No lookup goes
through this stack: without TLS the kit refuses the broker's http key set on a
non-loopback address, and no identity provider is on compose's network
(tests/integration/test_containers.py carries a lookup through the images).
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import yaml
from support.containers import (
    PODMAN,
    REPO,
    ULIMITS,
    podman,
    project_images,
    standin_images,
    why_podman_cannot_run,
)

from federator.signing import BrokerKeys

pytestmark = [pytest.mark.integration, pytest.mark.containers]

CONTAINERS = REPO / "deploy" / "containers"
SERVICES = ("postgres", "redis", "broker", "adapter")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _token() -> str:
    return secrets.token_urlsafe(36)


def write_project(directory: Path, broker_port: int) -> Path:
    """deploy/containers as an operator fills it in: env files, the signing key, kit."""
    project = directory / "deploy" / "containers"
    (project / "env").mkdir(parents=True)
    (project / "kit" / "data").mkdir(parents=True)
    password = _token()
    env = {
        "postgres": {"POSTGRES_USER": "federator", "POSTGRES_DB": "federator",
                     "POSTGRES_PASSWORD": password},
        "redis": {"REDIS_PASSWORD": password},
        "broker": {
            "FEDERATOR_ENV": "development",  # no TLS here: see the module's docstring
            "FEDERATOR_DATABASE_URL":
                f"postgresql+psycopg://federator:{password}@postgres/federator",
            "FEDERATOR_REDIS_URL": f"redis://:{password}@redis:6379/0",
            "FEDERATOR_SECRET_KEY": _token(), "FEDERATOR_AUDIT_KEY": _token(),
            "FEDERATOR_BROKER_ID": "compose-test-broker",
            "FEDERATOR_PUBLIC_URL": f"http://127.0.0.1:{broker_port}",
            "FEDERATOR_OIDC_ISSUER": "http://127.0.0.1:9/",
            "FEDERATOR_OIDC_CLIENT_ID": "federator", "FEDERATOR_OIDC_CLIENT_SECRET": _token(),
            "FEDERATOR_OIDC_AUDIENCE": "federator"},
        "kit": {"KIT_RECORD_REF_KEY": _token()},
    }
    for name, values in env.items():
        path = project / "env" / f"{name}.env"
        path.write_text("".join(f"{k}={v}\n" for k, v in values.items()), encoding="utf-8")
        path.chmod(0o600)
    key = project / "env" / "signing-key.jwk.json"
    BrokerKeys.load(key, "compose-test-broker", create=True)
    os.chown(key, 10001, 10001)  # the broker image's user (compose's uid is not applied
    key.chmod(0o400)             # by every implementation: docs/deploy.md)
    shutil.copy(CONTAINERS / "kit" / "kit.toml.example", project / "kit" / "kit.toml")
    shutil.copy(REPO / "config" / "kit-template.csv", project / "kit" / "data" / "children.csv")
    compose = yaml.safe_load((CONTAINERS / "compose.yaml").read_text(encoding="utf-8"))
    # podman-compose 1.0.3 appends an override file's command to the first's, so the
    # one change (development needs --allow-development) is made in a copy.
    compose["services"]["broker"]["command"].append("--allow-development")
    compose.pop("x-broker")
    (project / "compose.test.yaml").write_text(yaml.safe_dump(compose, sort_keys=False),
                                               encoding="utf-8")
    return project


class Compose:
    def __init__(self, project: Path, name: str, env: dict[str, str]) -> None:
        self.project, self.name, self.env = project, name, env

    def __call__(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["podman-compose", f"--podman-args={' '.join(PODMAN[1:])}",
             f"--podman-run-args={' '.join(ULIMITS)}", "-p", self.name,
             "-f", "compose.test.yaml", *args],
            cwd=self.project, env=self.env, capture_output=True, text=True, timeout=timeout,
            check=False)

    def container(self, service: str) -> str:
        return f"{self.name}_{service}_1"

    def healthy(self, service: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if podman("healthcheck", "run", self.container(service), check=False).returncode == 0:
                return
            time.sleep(1)
        logs = podman("logs", self.container(service), check=False)
        pytest.fail(f"{service} never healthy:\n{logs.stdout[-2000:]}{logs.stderr[-2000:]}")


@pytest.fixture
def compose(tmp_path: Path) -> Iterator[tuple[Compose, int, int]]:
    reason = why_podman_cannot_run() or (
        None if shutil.which("podman-compose") else "podman-compose is not installed")
    if reason:
        pytest.skip(reason)
    images = {**project_images(tmp_path / "images"), **standin_images()}
    broker_port, kit_port = _free_port(), _free_port()
    project = write_project(tmp_path, broker_port)
    env = {**os.environ, "POSTGRES_IMAGE": images["postgres"], "REDIS_IMAGE": images["redis"],
           "FEDERATOR_BROKER_IMAGE": images["broker"],
           "FEDERATOR_ADAPTER_IMAGE": images["adapter"],
           "FEDERATOR_BROKER_PORT": str(broker_port), "FEDERATOR_ADAPTER_PORT": str(kit_port)}
    run = Compose(project, f"fedtest{uuid.uuid4().hex[:8]}", env)
    try:
        yield run, broker_port, kit_port
    finally:
        run("down", "-v", "-t", "3")
        podman("network", "rm", "--force", f"{run.name}_backend", check=False)


def test_compose_brings_up_the_stack(compose: tuple[Compose, int, int]) -> None:
    run, broker_port, kit_port = compose
    # podman-compose 1.0.3 does not wait on depends_on conditions: the order by hand.
    up = run("up", "-d", "--no-build", "postgres", "redis")
    assert up.returncode == 0, up.stderr[-3000:]
    run.healthy("postgres")
    run.healthy("redis")
    up = run("up", "-d", "--no-build", "migrate")
    assert up.returncode == 0, up.stderr[-3000:]
    migrated = podman("wait", run.container("migrate"), timeout=180)
    logs = podman("logs", run.container("migrate"), check=False)
    assert migrated.stdout.strip() == "0", logs.stdout[-2000:] + logs.stderr[-3000:]
    up = run("up", "-d", "--no-build", "broker", "adapter")
    assert up.returncode == 0, up.stderr[-3000:]
    run.healthy("broker", timeout=90)
    run.healthy("adapter")

    ready = requests.get(f"http://127.0.0.1:{broker_port}/readyz", timeout=10)
    assert ready.json() == {"status": "ok", "checks": {"database": True, "shared_state": True}}
    jwks = requests.get(f"http://127.0.0.1:{broker_port}/.well-known/jwks.json", timeout=10)
    assert [k["kty"] for k in jwks.json()["keys"]] == ["EC"]  # the key from the secret file
    health = requests.get(f"http://127.0.0.1:{kit_port}/health", timeout=10).json()
    assert health["status"] == "ok"
    assert health["authority"] == "leeds-cs"  # kit/kit.toml.example, as mounted

    broker = run.container("broker")
    assert podman("exec", broker, "id", "-u").stdout.strip() == "10001"
    assert podman("exec", run.container("adapter"), "id", "-u").stdout.strip() == "10002"
    written = podman("exec", broker, "touch", "/app/written", check=False)
    assert written.returncode != 0 and "Read-only file system" in written.stderr
