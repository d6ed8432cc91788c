"""The kit installed ALONE, as an authority installs it: `federator-adapter` built
from packaging/federator-adapter (sdist, then the wheel from that sdist, as
``python -m build`` does), installed into a fresh venv with nothing of the
broker, serving a CSV and answering a signed federator-lookup/1 request over HTTP.

Also builds the wheel straight from the checkout (``pip wheel``, as ``pip install
./packaging/federator-adapter`` does) and checks both routes give the same files.
Slow-ish (a venv and an install: about 30 s, once per session), so marked
``packaging``; pip fetches the kit's dependencies from the configured indexes.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from adapters.protocol import encode_body, sign_request

pytestmark = [pytest.mark.integration, pytest.mark.packaging]

REPO = Path(__file__).resolve().parents[3]
KIT_PROJECT = REPO / "packaging" / "federator-adapter"


def _env() -> dict[str, str]:
    """The environment without anything that would put the checkout on the path."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def _run(args: list[str], cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    result = subprocess.run(args, cwd=cwd, env=_env(), capture_output=True, text=True,
                            timeout=timeout, check=False)
    if result.returncode != 0:
        pytest.fail(f"{' '.join(args)} failed ({result.returncode}):\n"
                    f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result


def _names(wheel: Path) -> list[str]:
    with zipfile.ZipFile(wheel) as archive:
        return sorted(archive.namelist())


class KitVenv:
    def __init__(self, path: Path, wheel: Path, seconds: dict[str, float]) -> None:
        self.path, self.wheel, self.seconds = path, wheel, seconds
        self.python = path / "bin" / "python"
        self.script = path / "bin" / "federator-adapter"

    def python_says(self, code: str, cwd: Path) -> subprocess.CompletedProcess:
        return subprocess.run([str(self.python), "-c", code], cwd=cwd, env=_env(),
                              capture_output=True, text=True, timeout=60, check=False)


@pytest.fixture(scope="session")
def kit_venv(tmp_path_factory: pytest.TempPathFactory) -> KitVenv:
    """Built and installed once per test session (the times are printed with -rA)."""
    work = tmp_path_factory.mktemp("kit-alone")
    seconds: dict[str, float] = {}
    started = time.monotonic()
    # The shared test venv's `build` (a [test] dependency): sdist, then wheel from it.
    _run([sys.executable, "-m", "build", "--outdir", str(work / "dist"), str(KIT_PROJECT)],
         cwd=work)
    seconds["build sdist+wheel"] = time.monotonic() - started
    wheels = list((work / "dist").glob("federator_adapter-*.whl"))
    assert len(wheels) == 1, wheels
    started = time.monotonic()
    # The other route: the wheel straight from the checkout (what `pip install ./...` does).
    _run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir",
          str(work / "direct"), str(KIT_PROJECT)], cwd=work)
    seconds["pip wheel from the checkout"] = time.monotonic() - started
    direct = list((work / "direct").glob("federator_adapter-*.whl"))
    assert _names(direct[0]) == _names(wheels[0])  # the same files by either route
    started = time.monotonic()
    venv = work / "venv"
    # No pip of its own (ensurepip costs ~10 s here): the test venv's pip installs into it.
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=work)
    seconds["venv"] = time.monotonic() - started
    started = time.monotonic()
    _run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install",
          "--quiet", str(wheels[0])], cwd=work)
    seconds["pip install (with dependencies)"] = time.monotonic() - started
    return KitVenv(venv, wheels[0], seconds)


def test_kit_installs_without_the_broker(kit_venv: KitVenv, tmp_path: Path):
    print("kit alone, seconds:", {k: round(v, 1) for k, v in kit_venv.seconds.items()})
    with zipfile.ZipFile(kit_venv.wheel) as archive:
        names = archive.namelist()
    assert "adapters/kit/cli.py" in names and "adapters/kit/given_name_variants.csv" in names
    assert not [n for n in names if n.startswith("federator/") or "__pycache__" in n]
    where = kit_venv.python_says("import adapters, sys; print(adapters.__file__)", tmp_path)
    assert where.returncode == 0, where.stderr
    assert where.stdout.strip().startswith(str(kit_venv.path)), where.stdout
    for absent in ("federator", "sqlalchemy", "flask_smorest", "gunicorn", "alembic"):
        found = kit_venv.python_says(f"import {absent}", tmp_path)
        assert found.returncode != 0, f"{absent} is importable in the kit's venv"
        assert "ModuleNotFoundError" in found.stderr
    listed = subprocess.run([sys.executable, "-m", "pip", "--python", str(kit_venv.python),
                             "list", "--format=freeze"],
                            env=_env(), capture_output=True, text=True, timeout=60, check=True)
    assert "federator-adapter==0.1.0" in listed.stdout.lower().replace("_", "-")
    assert "federator==" not in listed.stdout.lower()
    licence = kit_venv.path.glob("lib/python3*/site-packages/federator_adapter-*.dist-info/"
                                 "licenses/LICENSE")
    assert [p.read_bytes() for p in licence] == [(REPO / "LICENSE").read_bytes()]


def test_sql_source_without_the_extra_says_what_to_install(kit_venv: KitVenv, tmp_path: Path):
    config = tmp_path / "kit.toml"
    config.write_text('authority_id = "test-cs"\nname = "Test"\n'
                      'jwks_url = "http://127.0.0.1:9/.well-known/jwks.json"\n'
                      'broker_issuer = "federator-test-broker"\nsource = "sql"\n'
                      'sql_url = "sqlite:///kit.db"\nsql_query = "select 1"\n', encoding="utf-8")
    result = subprocess.run([str(kit_venv.script), "serve", "--config", str(config)],
                            cwd=tmp_path, env=_env(), capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode != 0
    assert "federator-adapter[sql]" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.fixture
def kit_alone(kit_venv: KitVenv, tmp_path: Path, jwks_server, kit_csv) -> Iterator[str]:
    config = tmp_path / "kit.toml"
    config.write_text(
        'authority_id = "test-cs"\n'
        'name = "Test Children\'s Services"\n'
        f'jwks_url = "{jwks_server.jwks_url}"\n'
        'broker_issuer = "federator-test-broker"\n'
        'source = "csv"\n'
        f'csv_path = "{kit_csv.name}"\n',
        encoding="utf-8",
    )
    with __import__("socket").socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [str(kit_venv.script), "serve", "--config", str(config), "--port", str(port)],
        cwd=tmp_path, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                requests.get(f"{url}/health", timeout=1)
                break
            except requests.ConnectionError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    out = proc.stdout.read().decode() if proc.stdout else ""
                    pytest.fail(f"the installed kit did not start:\n{out}")
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout:
            proc.stdout.close()


def test_installed_kit_answers_a_signed_lookup(kit_alone: str, broker_key, make_body):
    health = requests.get(f"{kit_alone}/health", timeout=5)
    assert health.json()["protocol"] == "federator-lookup/1"
    assert health.headers.get("Server") == "federator-kit"
    payload = make_body()
    body = encode_body(payload)
    token = sign_request(body, broker_key, issuer="federator-test-broker", audience="test-cs")
    r = requests.post(f"{kit_alone}/lookup", data=body, timeout=10,
                      headers={"Authorization": f"Bearer {token}",
                               "Content-Type": "application/json"})
    assert r.status_code == 200, r.text
    answer = r.json()
    assert answer["lookup_id"] == payload["lookup_id"]
    assert answer["status"] == "match"
    assert [p["name"] for p in answer["professionals"]] == ["Jo Reed", "Sam Patel"]
    # Unsigned: refused by the installed kit too.
    unsigned = requests.post(f"{kit_alone}/lookup", data=body, timeout=10,
                             headers={"Content-Type": "application/json"})
    assert unsigned.status_code == 401
