"""The registry's seed file (TOML ``[[endpoint]]`` tables), read and checked.
Pure: no database; ``Registry.seed`` stores what this returns."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from typing import Any

from marshmallow import ValidationError

from federator.registry.policy import PolicySchema, policy_errors
from federator.registry.schemas import protocols

REQUIRED = ("id", "name", "code", "coverage", "protocol", "url")


class SeedError(ValueError):
    """The seed file is wrong; the message names the endpoint and the key."""


def parse_seed(raw: bytes) -> list[dict[str, Any]]:
    try:
        data = tomllib.loads(raw.decode())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise SeedError(f"registry seed is not valid TOML: {e}") from e
    items = data.get("endpoint", [])
    if not isinstance(items, list):
        raise SeedError("registry seed: 'endpoint' must be an array of tables")
    return [_seed_entry(i, item) for i, item in enumerate(items)]


def _seed_entry(index: int, item: Mapping[str, Any]) -> dict[str, Any]:
    where = f"registry seed endpoint {item.get('id', index)!s}"
    for key in REQUIRED:
        if not item.get(key):
            raise SeedError(f"{where}: '{key}' is required")
    coverage = item["coverage"]
    if not isinstance(coverage, list) or not all(isinstance(c, str) for c in coverage):
        raise SeedError(f"{where}: 'coverage' must be a list of GSS codes or ['national']")
    if item["protocol"] not in protocols():
        raise SeedError(f"{where}: 'protocol' must be one of {', '.join(protocols())}")
    timeout = item.get("timeout_ms", 3000)
    if not isinstance(timeout, int) or not 100 <= timeout <= 60000:
        raise SeedError(f"{where}: 'timeout_ms' must be a whole number from 100 to 60000")
    credentials = item.get("credentials") or {}
    if not isinstance(credentials, dict) or not all(
            isinstance(v, str) for v in credentials.values()):
        raise SeedError(f"{where}: 'credentials' must be a table of strings")
    try:
        policy = PolicySchema().load(item["policy"]) if "policy" in item else None
    except ValidationError as e:
        raise SeedError(f"{where}: 'policy' is wrong: {e.messages}") from e
    if policy_errors(item["protocol"], policy):
        raise SeedError(f"{where}: 'policy' is only for fhir-r4 endpoints")
    return {
        "id": str(item["id"]), "name": str(item["name"]), "code": str(item["code"]),
        "policy": policy,
        "coverage": coverage, "protocol": item["protocol"], "url": str(item["url"]),
        "timeout_ms": timeout, "contact": str(item.get("contact", "")),
        "credentials": {str(k): v for k, v in credentials.items()},
    }
