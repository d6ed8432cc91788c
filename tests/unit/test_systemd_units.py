"""deploy/systemd's units, checked by systemd itself: ``systemd-analyze verify``
(every key known, every value parsed, the commands exist) and ``systemd-analyze
security`` (the exposure score systemd computes from the hardening stays low).

The units are checked in a scratch root holding systemd's own units and stand-ins
for the two commands; skipped where systemd-analyze is not installed (Debian:
``apt-get install systemd``).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
UNITS = REPO / "deploy" / "systemd"
NAMES = ("federator.service", "federator-adapter.service")
COMMANDS = ("opt/federator/venv/bin/federator",
            "opt/federator-adapter/venv/bin/federator-adapter")
#: systemd's exposure score, in tenths (0 safest, 100 unprotected): 2.0 or better.
EXPOSURE_THRESHOLD = "20"

pytestmark = pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                                reason="systemd-analyze is not installed (Debian: systemd)")


@pytest.fixture
def root(tmp_path: Path) -> Path:
    shutil.copytree("/usr/lib/systemd/system", tmp_path / "usr/lib/systemd/system",
                    symlinks=True)
    (tmp_path / "bin").mkdir()
    shutil.copy("/bin/kill", tmp_path / "bin/kill")
    for command in COMMANDS:
        path = tmp_path / command
        path.parent.mkdir(parents=True)
        path.write_text("#!/bin/sh\n")
        path.chmod(0o755)
    (tmp_path / "etc/systemd/system").mkdir(parents=True)
    for name in NAMES:
        shutil.copy(UNITS / name, tmp_path / "etc/systemd/system" / name)
    return tmp_path


def _analyze(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["systemd-analyze", *args, f"--root={root}",
                           *(f"/etc/systemd/system/{n}" for n in NAMES)],
                          capture_output=True, text=True, timeout=60, check=False)


def test_systemd_verifies_the_units(root: Path):
    result = _analyze(root, "verify", "--man=no")
    # verify exits 0 after "Unknown key ..., ignoring": any message is a fault
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


def test_hardening_keeps_the_exposure_low(root: Path):
    result = _analyze(root, "security", "--offline=yes", f"--threshold={EXPOSURE_THRESHOLD}")
    assert result.returncode == 0, result.stdout[-3000:]


@pytest.mark.parametrize("name", NAMES)
def test_each_unit_has_the_promised_settings(name: str):
    lines = set((UNITS / name).read_text(encoding="utf-8").splitlines())
    assert {"NoNewPrivileges=yes", "ProtectSystem=strict"} <= lines
    assert any(line.startswith("ReadWritePaths=/var/lib/") for line in lines)
    assert any(line.startswith("EnvironmentFile=/etc/") for line in lines)
    assert "DynamicUser=yes" in lines or "User=federator" in lines
