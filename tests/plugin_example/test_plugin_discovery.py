"""Adapter kinds are found through the ``federator.adapters`` entry point group:
the example package beside this file is really installed (pip, into a
temporary folder put on ``sys.path``), then discovered, built and asked."""

from __future__ import annotations

import importlib
import logging
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from adapters.base import Target
from adapters.plugins import ClientContext, installed_kinds, load_clients

HERE = Path(__file__).resolve().parent
KIND = "example-register/1"


def context() -> ClientContext:
    return ClientContext(sign=lambda body, audience: "unused", user_agent="federator/test")


@pytest.fixture
def installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    source = tmp_path / "src"
    shutil.copytree(HERE, source, ignore=shutil.ignore_patterns("test_*", "__pycache__"))
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
         "--target", str(target), str(source)],
        check=True, capture_output=True, timeout=300)
    monkeypatch.syspath_prepend(str(target))
    importlib.invalidate_caches()
    return target


def test_the_built_in_kinds_are_installed() -> None:
    kinds = installed_kinds()
    assert "federator-lookup/1" in kinds and "fhir-r4" in kinds
    clients = load_clients(context())
    assert clients["fhir-r4"].protocol == "fhir-r4"
    assert clients["federator-lookup/1"].protocol == "federator-lookup/1"


def test_an_installed_package_adds_a_kind(installed: Path) -> None:
    assert list(installed.glob("federator_example_adapter-*.dist-info"))
    assert KIND in installed_kinds()
    client = load_clients(context())[KIND]
    target = Target(id="example", url="http://unused.invalid", timeout_ms=1000)
    answer = client.lookup(target, {"lookup_id": "L1", "child": {"nhs_number": "9990001014"}},
                           deadline=time.monotonic() + 1)
    assert answer["status"] == "match"
    assert answer["professionals"][0]["name"] == "Ada Example"


def test_without_the_package_the_kind_is_absent() -> None:
    assert KIND not in installed_kinds()


def test_a_broken_plugin_is_left_out_and_logged(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               caplog: pytest.LogCaptureFixture) -> None:
    dist = tmp_path / "broken_adapter-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-adapter\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        "[federator.adapters]\nbroken/1 = no_such_module_here:Client\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    with caplog.at_level(logging.ERROR, logger="adapters.plugins"):
        clients = load_clients(context())
    assert "broken/1" in installed_kinds()
    assert "broken/1" not in clients and "fhir-r4" in clients
    assert "broken/1 could not be loaded: ModuleNotFoundError" in caplog.text
