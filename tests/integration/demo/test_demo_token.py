"""``federator demo token`` finds the running demo by itself (issue 22): the demo
writes its run file (``<instance>/demo/running.json``) and the command reads it, so a
demo on another port needs no ``--port``; a missing or stale file is a clear message,
never a token from some other process or a traceback."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import jwt
import pytest
from click.testing import CliRunner

from federator.cli import main as cli
from federator.demo.idp import create_idp_app
from federator.demo.running import write_run_file
from federator.demo.serving import ServedApp, bind

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def idp() -> Iterator[ServedApp]:
    served = bind(0)
    served.start(create_idp_app(served.url))
    yield served
    served.stop()


def run_token(instance: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["demo", "token", *args],
                                env={"FEDERATOR_INSTANCE_DIR": str(instance)})
    return result.exit_code, result.output


def test_token_reads_the_run_file_of_a_demo_on_another_port(tmp_path: Path,
                                                            idp: ServedApp) -> None:
    (tmp_path / "demo").mkdir()
    write_run_file(tmp_path / "demo", {"broker": "http://127.0.0.1:1", "authorities": [],
                                       "identity_provider": idp.url})
    code, output = run_token(tmp_path, "--persona", "auditor")
    assert code == 0, output
    claims = jwt.decode(output.strip(), options={"verify_signature": False})
    assert claims["iss"] == idp.url


def test_no_run_file_says_so_and_how_to_start(tmp_path: Path) -> None:
    code, output = run_token(tmp_path)
    assert code != 0
    assert "no running demo found" in output and "running.json" in output
    assert "federator demo" in output and "Traceback" not in output


def test_a_run_file_left_by_a_demo_that_ended_is_stale(tmp_path: Path, idp: ServedApp) -> None:
    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                           capture_output=True, text=True, check=True)
    (tmp_path / "demo").mkdir()
    # even though something answers at the address, the demo that wrote it has gone
    write_run_file(tmp_path / "demo", {"identity_provider": idp.url},
                   pid=int(ended.stdout))
    code, output = run_token(tmp_path)
    assert code != 0
    assert "stale" in output and f"process {int(ended.stdout)}" in output


def test_a_damaged_run_file_is_named(tmp_path: Path) -> None:
    (tmp_path / "demo").mkdir()
    (tmp_path / "demo" / "running.json").write_text("{not json")
    code, output = run_token(tmp_path)
    assert code != 0 and "cannot read" in output and "running.json" in output
    (tmp_path / "demo" / "running.json").write_text(json.dumps({"broker": "x"}))
    code, output = run_token(tmp_path)
    assert code != 0 and "names no identity provider" in output


def test_port_and_idp_still_win_over_the_run_file(tmp_path: Path, idp: ServedApp) -> None:
    (tmp_path / "demo").mkdir()
    (tmp_path / "demo" / "running.json").write_text("{not json")
    code, output = run_token(tmp_path, "--idp", idp.url)
    assert code == 0, output
    port = int(idp.url.rsplit(":", 1)[1]) - 1
    code, output = run_token(tmp_path, "--port", str(port))
    assert code == 0, output
