"""Reading the registry and seeding it from a TOML file."""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select

from federator.audit.trail import AuditTrail
from federator.lookup.routing import Endpoint
from federator.storage import endpoints

PROTOCOLS = ("federator-lookup/1", "fhir-r4")
REQUIRED = ("id", "name", "code", "coverage", "protocol", "url")


class SeedError(ValueError):
    """The seed file is wrong; the message names the endpoint and the key."""


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class Registry:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def all(self) -> list[Endpoint]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(endpoints).order_by(endpoints.c.id)).mappings().all()
        return [_endpoint(r) for r in rows]

    def get(self, endpoint_id: str) -> Endpoint | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(endpoints).where(endpoints.c.id == endpoint_id)).mappings().first()
        return _endpoint(row) if row else None

    def seed(self, path: Path, trail: AuditTrail) -> list[str]:
        """Upsert every ``[[endpoint]]`` of the file as ``active``; audited."""
        entries = parse_seed(path.read_bytes())
        with self.engine.begin() as conn:
            for entry in entries:
                values = {
                    "name": entry["name"], "code": entry["code"],
                    "coverage": json.dumps(entry["coverage"]),
                    "protocol": entry["protocol"], "url": entry["url"],
                    "timeout_ms": entry["timeout_ms"], "contact": entry["contact"],
                    "status": "active",
                    # Credentials are kept out of the database until they can be
                    # encrypted at rest (registry issue); no protocol here needs them yet.
                    "credentials": None,
                    "updated_at": _now(),
                }
                exists = conn.execute(
                    select(endpoints.c.id).where(endpoints.c.id == entry["id"])).first()
                if exists:
                    conn.execute(endpoints.update().where(endpoints.c.id == entry["id"])
                                 .values(**values))
                else:
                    conn.execute(endpoints.insert().values(id=entry["id"], created_at=_now(),
                                                           **values))
        ids = [e["id"] for e in entries]
        trail.append("registry.seeded", actor_id="system", actor_role="operator",
                     endpoints=ids)
        return ids


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
    if item["protocol"] not in PROTOCOLS:
        raise SeedError(f"{where}: 'protocol' must be one of {', '.join(PROTOCOLS)}")
    timeout = item.get("timeout_ms", 3000)
    if not isinstance(timeout, int) or not 100 <= timeout <= 60000:
        raise SeedError(f"{where}: 'timeout_ms' must be a whole number from 100 to 60000")
    return {
        "id": str(item["id"]), "name": str(item["name"]), "code": str(item["code"]),
        "coverage": coverage, "protocol": item["protocol"], "url": str(item["url"]),
        "timeout_ms": timeout, "contact": str(item.get("contact", "")),
        "credentials": dict(item.get("credentials") or {}),
    }


def _endpoint(row: Mapping[str, Any]) -> Endpoint:
    return Endpoint(
        id=row["id"], name=row["name"], code=row["code"],
        coverage=tuple(json.loads(row["coverage"])), protocol=row["protocol"],
        url=row["url"], timeout_ms=row["timeout_ms"], contact=row["contact"],
        status=row["status"],
    )
