"""``federator keys init`` (the first signing key) and ``federator keys secrets``
(fresh secret, audit and credentials keys), issue 22: what an operator runs on a
new broker before its first start."""

from __future__ import annotations

import os
import shlex
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.fernet import Fernet

from federator.cli import main
from federator.config import ConfigError, Settings, low_entropy
from federator.signing import BrokerKeys, read_ring


@pytest.fixture
def key_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in list(os.environ):
        if name.startswith("FEDERATOR_"):
            monkeypatch.delenv(name)
    path = tmp_path / "keys" / "signing-key.jwk.json"
    monkeypatch.setenv("FEDERATOR_SIGNING_KEY_FILE", str(path))
    return path


def test_init_writes_one_private_key_mode_0600(key_file: Path) -> None:
    # production (the default) with no secrets set yet: init needs none of them
    result = CliRunner().invoke(main, ["keys", "init"])
    assert result.exit_code == 0, result.output
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    ring = read_ring(key_file)
    assert len(ring) == 1 and ring[0].private and ring[0].retires_at is None
    assert ring[0].key.kid in result.output
    keys = BrokerKeys.load(key_file, "federator", create=False)
    assert keys.jwks()["keys"][0]["kid"] == ring[0].key.kid


def test_init_refuses_to_overwrite_a_ring(key_file: Path) -> None:
    assert CliRunner().invoke(main, ["keys", "init"]).exit_code == 0
    before = key_file.read_bytes()
    again = CliRunner().invoke(main, ["keys", "init"])
    assert again.exit_code == 1
    assert "already exists" in again.output and "keys rotate" in again.output
    assert key_file.read_bytes() == before


def test_rotate_refuses_without_init_and_works_after_it(
        key_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FEDERATOR_ENV", "development")  # rotate reads every setting
    refused = CliRunner().invoke(main, ["keys", "rotate"])
    assert refused.exit_code == 1 and "does not exist" in refused.output
    assert CliRunner().invoke(main, ["keys", "init"]).exit_code == 0
    first = read_ring(key_file)[0].key.kid
    rotated = CliRunner().invoke(main, ["keys", "rotate", "--overlap", "60"])
    assert rotated.exit_code == 0, rotated.output
    ring = read_ring(key_file)
    assert ring[0].key.kid == first and len(ring) == 2
    assert ring[0].retires_at is not None and ring[1].retires_at is None
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600


def exported(output: str) -> dict[str, str]:
    values = {}
    for line in output.splitlines():
        word, assignment = shlex.split(line)
        assert word == "export"
        name, _, value = assignment.partition("=")
        values[name] = value
    return values


def test_secrets_prints_values_production_accepts(key_file: Path) -> None:
    first = exported(CliRunner().invoke(main, ["keys", "secrets"]).output)
    second = exported(CliRunner().invoke(main, ["keys", "secrets"]).output)
    assert set(first) == {"FEDERATOR_SECRET_KEY", "FEDERATOR_AUDIT_KEY",
                          "FEDERATOR_CREDENTIALS_KEY"}
    assert all(first[k] != second[k] for k in first)  # fresh each time
    assert not low_entropy(first["FEDERATOR_SECRET_KEY"])
    assert not low_entropy(first["FEDERATOR_AUDIT_KEY"])
    Fernet(first["FEDERATOR_CREDENTIALS_KEY"].encode())  # a valid Fernet key
    production = {**first, "FEDERATOR_ENV": "production",
                  "FEDERATOR_PUBLIC_URL": "https://federator.example.org",
                  "FEDERATOR_OIDC_ISSUER": "https://idp.example.org",
                  "FEDERATOR_SIGNING_KEY_FILE": str(key_file)}
    settings = Settings.from_env(production)
    assert settings.secret_key == first["FEDERATOR_SECRET_KEY"]
    with pytest.raises(ConfigError):  # the same check refuses a weak one
        Settings.from_env({**production, "FEDERATOR_AUDIT_KEY": "a" * 40})


def _planted_tmp(key_file: Path) -> Path:
    """The temporary name write_ring used (before issue 22's review): predictable,
    so anyone who can write the key's folder could plant it first."""
    return key_file.with_name(f".{key_file.name}.{os.getpid()}.tmp")


def test_init_and_rotate_never_write_the_key_into_a_planted_file(key_file: Path) -> None:
    # issue 22 review: a file waiting at the temporary name (readable by all) was
    # opened without O_EXCL, kept its mode, and was renamed over the ring
    key_file.parent.mkdir(parents=True)
    planted = _planted_tmp(key_file)
    planted.write_text("")
    planted.chmod(0o644)
    assert CliRunner().invoke(main, ["keys", "init"]).exit_code == 0
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert planted.read_text() == ""  # nothing of the key went into it
    planted.chmod(0o644)
    result = CliRunner().invoke(main, ["keys", "rotate", "--overlap", "0"],
                                env={"FEDERATOR_ENV": "development"})
    assert result.exit_code == 0, result.output
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert planted.read_text() == "" and len(read_ring(key_file)) == 2


def test_rotate_never_follows_a_planted_symlink(key_file: Path, tmp_path: Path) -> None:
    # issue 22 review: a symlink at the temporary name sent the private key to its
    # target and then became the key file itself
    assert CliRunner().invoke(main, ["keys", "init"]).exit_code == 0
    elsewhere = tmp_path / "attacker-readable"
    elsewhere.write_text("")
    _planted_tmp(key_file).symlink_to(elsewhere)
    result = CliRunner().invoke(main, ["keys", "rotate", "--overlap", "0"],
                                env={"FEDERATOR_ENV": "development"})
    assert result.exit_code == 0, result.output
    assert elsewhere.read_text() == ""
    assert not key_file.is_symlink() and len(read_ring(key_file)) == 2


def test_an_init_cut_off_while_writing_leaves_no_ring_behind(
        key_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Killed part-way (here: while the key is being flushed), ``keys init`` must
    not leave an empty ring under the key's name, which the broker cannot start
    from and the next ``keys init`` would refuse to replace."""
    import federator.signing as signing

    seen: list[bool] = []

    def cut_off(fd: int) -> None:
        seen.append(key_file.exists())
        raise KeyboardInterrupt  # as a kill part-way through the write

    with monkeypatch.context() as patched:
        patched.setattr(signing.os, "fsync", cut_off)
        with pytest.raises(KeyboardInterrupt):
            signing.init_ring(key_file)
    assert seen == [False]  # nothing under the ring's name while it was written
    assert not key_file.exists() and list(key_file.parent.iterdir()) == []
    assert CliRunner().invoke(main, ["keys", "init"]).exit_code == 0
    assert read_ring(key_file)[0].private
