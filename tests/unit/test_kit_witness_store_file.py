"""The kit's witness state file is written through a fresh temporary file: a
symlink planted at a guessable temporary name beside it must neither receive the
state nor become the state file (issue 22 review)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from adapters.kit.witness import WitnessStore


def test_update_never_follows_a_planted_symlink(tmp_path: Path) -> None:
    path = tmp_path / "witness.json"
    elsewhere = tmp_path / "attacker-owned.json"
    elsewhere.write_text("")
    # the name update() used before the fix: anyone who can write the folder knew it
    path.with_name(f".{path.name}.{os.getpid()}.tmp").symlink_to(elsewhere)
    store = WitnessStore(path)
    with store.update() as state:
        state["status"] = "consistent"
    assert elsewhere.read_text() == ""
    assert not path.is_symlink() and store.read() == {"status": "consistent"}
    assert not stat.S_IMODE(path.stat().st_mode) & stat.S_IWOTH
