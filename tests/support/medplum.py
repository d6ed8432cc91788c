"""Medplum's FHIR router and in-memory repository (npm ``@medplum/fhir-router``),
behind the thin wrapper ``tests/integration/medplum_fhir/server.mjs``, started on
loopback: an independent FHIR R4 server for the FHIR client's interop tests and
``benchmarks/fhir_lookups.py``. Loaded over HTTP (``put``)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from typing import Any

import requests

from adapters.base import Target

HARNESS = os.path.join(os.path.dirname(os.path.dirname(__file__)), "integration",
                       "medplum_fhir")


class NotAvailable(RuntimeError):
    """Node.js or the harness's node_modules are missing (``npm ci`` in HARNESS)."""


def available() -> str:
    """The node binary, or :class:`NotAvailable` saying what is missing."""
    node = shutil.which("node")
    if node is None:
        raise NotAvailable("node is not installed")
    if not os.path.isdir(os.path.join(HARNESS, "node_modules", "@medplum", "fhir-router")):
        raise NotAvailable(f"run npm ci in {HARNESS} (scripts/test does)")
    return node


@dataclass
class Medplum:
    base: str
    process: subprocess.Popen[str]

    def target(self) -> Target:
        return Target(id="medplum", url=self.base, timeout_ms=5000)

    def put(self, resource: dict[str, Any]) -> dict[str, Any]:
        reply = requests.put(f"{self.base}/{resource['resourceType']}/{resource['id']}",
                             json=resource, timeout=10,
                             headers={"Content-Type": "application/fhir+json"})
        assert reply.status_code in (200, 201), reply.text[:300]
        return dict(reply.json())

    def requests(self) -> int:
        root = self.base.split("/fhir/")[0]
        return int(requests.get(f"{root}/_requests", timeout=5).json()["requests"])


def start(config: dict[str, Any] | None = None) -> Medplum:
    """A new server (``config``: ``{"baseUrl": …}``, the base it believes it has)."""
    node = available()
    process = subprocess.Popen([node, os.path.join(HARNESS, "server.mjs"),
                                json.dumps(config or {})], stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, text=True)
    assert process.stdout is not None
    line = process.stdout.readline()  # Medplum indexes the R4 definitions first (~5 s)
    if not line:
        raise RuntimeError(f"the Medplum FHIR server did not start (exit "
                           f"{process.wait(timeout=5)})")
    return Medplum(json.loads(line)["base"], process)


def stop(server: Medplum) -> None:
    server.process.terminate()
    server.process.wait(timeout=10)
    if server.process.stdout is not None:
        server.process.stdout.close()
