"""deploy/containers' compose file and Containerfiles keep their promises: healthchecks,
secrets only in env files and secret files (each with an example, the real ones
ignored by git), nothing published beyond loopback, no image running as root.

compose.yaml is not run here (no registry for PostgreSQL's and Redis' images:
docs/deploy.md); tests/integration/test_containers.py builds and runs the images.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
CONTAINERS = REPO / "deploy" / "containers"
SECRET_NAME = re.compile(r"SECRET|PASSWORD|TOKEN|_KEY$")


def _compose() -> dict:
    return yaml.safe_load((CONTAINERS / "compose.yaml").read_text(encoding="utf-8"))


def test_services_and_their_healthchecks():
    services = _compose()["services"]
    assert set(services) == {"postgres", "redis", "migrate", "broker", "adapter"}
    for name, service in services.items():
        if name != "migrate":  # a one-off run
            assert service.get("healthcheck", {}).get("test"), name
            assert service.get("restart") == "unless-stopped", name
    assert services["migrate"]["command"] == ["federator", "db", "upgrade"]
    assert services["broker"]["depends_on"]["migrate"] == {
        "condition": "service_completed_successfully"}


def test_secrets_come_from_env_files_and_secret_files_only():
    compose = _compose()
    for name, service in compose["services"].items():
        for key, value in (service.get("environment") or {}).items():
            assert not SECRET_NAME.search(key) or key.endswith("_FILE"), (name, key, value)
        for env_file in service.get("env_file", []):
            assert (CONTAINERS / f"{env_file}.example").is_file(), env_file
    for secret in compose["secrets"].values():
        assert secret["file"].startswith("./env/")
    for path in ("env/broker.env", "env/signing-key.jwk.json", "kit/data/children.csv"):
        ignored = subprocess.run(["git", "check-ignore", "-q", str(CONTAINERS / path)],
                                 cwd=REPO, check=False)
        assert ignored.returncode == 0, f"{path} would be committed"


def test_ports_are_published_on_loopback_only():
    for name, service in _compose()["services"].items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), (name, port)


def _final_stage(containerfile: str) -> str:
    text = (CONTAINERS / containerfile).read_text(encoding="utf-8")
    return text.rsplit("\nFROM ", 1)[1]


def test_images_run_as_their_own_users_with_a_healthcheck():
    for containerfile, user, uid in (("Containerfile.broker", "federator", 10001),
                                     ("Containerfile.adapter", "federator-adapter", 10002)):
        stage = _final_stage(containerfile)
        users = re.findall(r"^USER (\S+)$", stage, flags=re.M)
        assert users == [user], containerfile
        assert f"--uid {uid} " in stage
        assert "\nHEALTHCHECK " in stage
    secret = _compose()["x-broker"]["secrets"][0]
    assert secret["uid"] == "10001"  # the broker image's user reads the signing key


def test_filled_in_secrets_stay_out_of_images():
    """`COPY . /app` takes the whole context: what an operator fills in under
    deploy/containers must be left out by the ignore file podman and docker read."""
    ignored = set((REPO / ".dockerignore").read_text(encoding="utf-8").splitlines())
    assert {"deploy/containers/env/*.env", "deploy/containers/env/*.jwk.json",
            "deploy/containers/kit/kit.toml", "deploy/containers/kit/data"} <= ignored
    for path in ("env/broker.env", "env/signing-key.jwk.json", "kit/kit.toml"):
        git = subprocess.run(["git", "check-ignore", "-q", str(CONTAINERS / path)],
                             cwd=REPO, check=False)
        assert git.returncode == 0, f"{path} would be committed"
