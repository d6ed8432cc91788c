"""The registry's rows as the service reads and writes them: columns from
registered details, the public view of an endpoint, the routing ``Endpoint``,
review rows, and the snapshot an audited change is undone from."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, delete, select

from federator.lookup.routing import Endpoint
from federator.registry.rules import approval_problem, connection_target, details_version
from federator.registry.secrets import CredentialCipher
from federator.registry.tables import endpoint_checks, endpoint_reviews
from federator.storage import endpoints

PUBLIC_FIELDS = ("id", "name", "code", "protocol", "url", "timeout_ms", "contact", "status",
                 "created_at", "updated_at")


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def row_columns(data: Mapping[str, Any], cipher: CredentialCipher) -> dict[str, Any]:
    credentials = data.get("credentials") or None
    return {
        "name": data["name"], "code": data["code"], "coverage": json.dumps(data["coverage"]),
        "protocol": data["protocol"], "url": data["url"],
        "timeout_ms": data.get("timeout_ms", 3000), "contact": data.get("contact") or "",
        "credentials": cipher.encrypt(credentials) if credentials else None,
        "policy": json.dumps(data["policy"]) if data.get("policy") else None,
    }


def set_review(conn: Connection, endpoint_id: str, reason: str | None,
                actor: Mapping[str, Any], *, registered: bool = False) -> None:
    values = {"reason": reason, "changed_by": str(actor.get("actor_id", "")),
              "changed_by_role": actor.get("actor_role"), "changed_at": now_iso()}
    if registered:
        values["registered_by"] = values["changed_by"]
    exists = conn.execute(select(endpoint_reviews.c.endpoint_id)
                          .where(endpoint_reviews.c.endpoint_id == endpoint_id)).first()
    if exists:
        conn.execute(endpoint_reviews.update()
                     .where(endpoint_reviews.c.endpoint_id == endpoint_id).values(**values))
    else:
        conn.execute(endpoint_reviews.insert().values(endpoint_id=endpoint_id, **values))


def snapshot(conn: Connection, endpoint_id: str) -> tuple[Any, Any]:
    row = conn.execute(select(endpoints).where(endpoints.c.id == endpoint_id)).mappings().first()
    review = conn.execute(select(endpoint_reviews)
                          .where(endpoint_reviews.c.endpoint_id == endpoint_id)
                          ).mappings().first()
    return (dict(row) if row else None, dict(review) if review else None)


def restore(conn: Connection, endpoint_id: str, before: tuple[Any, Any]) -> None:
    row, review = before
    conn.execute(delete(endpoints).where(endpoints.c.id == endpoint_id))
    conn.execute(delete(endpoint_reviews).where(endpoint_reviews.c.endpoint_id == endpoint_id))
    if row:
        conn.execute(endpoints.insert().values(**row))
    if review:
        conn.execute(endpoint_reviews.insert().values(**review))


def row_target(row: Mapping[str, Any]) -> str:
    return connection_target(row["protocol"], row["url"], row["credentials"])


def last_check_of(conn: Connection, endpoint_id: str) -> dict[str, Any] | None:
    row = conn.execute(
        select(endpoint_checks).where(endpoint_checks.c.endpoint_id == endpoint_id,
                                      endpoint_checks.c.kind == "conformance")
        .order_by(endpoint_checks.c.id.desc()).limit(1)).mappings().first()
    if row is None:
        return None
    return {"at": row["at"], "passed": bool(row["ok"]), "checks": json.loads(row["result"]),
            "target": row["target"]}


def public_view(row: Mapping[str, Any], last_check: dict[str, Any] | None) -> dict[str, Any]:
    shown = {k: row[k] for k in PUBLIC_FIELDS}
    shown["coverage"] = json.loads(row["coverage"])
    shown["policy"] = json.loads(row["policy"]) if row.get("policy") else None
    shown["status_reason"] = row.get("reason")
    shown["credentials_stored"] = row["credentials"] is not None
    target = row_target(row)
    problem = approval_problem(last_check, target)
    if last_check is not None:
        # "current": the check was of the protocol, URL and credentials as they are
        last_check = {**{k: v for k, v in last_check.items() if k != "target"},
                      "current": last_check["target"] == target}
    shown["last_check"] = last_check
    shown["approval_problem"] = problem if row["status"] == "pending" else None
    shown["version"] = details_version(row)
    return shown


def endpoint_of(row: Mapping[str, Any]) -> Endpoint:
    return Endpoint(
        id=row["id"], name=row["name"], code=row["code"],
        coverage=tuple(json.loads(row["coverage"])), protocol=row["protocol"],
        url=row["url"], timeout_ms=row["timeout_ms"], contact=row["contact"],
        status=row["status"], policy=row.get("policy"),
    )
