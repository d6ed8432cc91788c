"""The endpoint registry: reading, seeding from TOML, registering and changing
endpoints. Every change is written to the audit trail; a change whose audit
record cannot be written is undone (``AuditUnavailable`` reaches the caller)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, select

from adapters.smart_auth import in_force
from federator.audit.trail import AuditTrail, AuditUnavailable
from federator.lookup.routing import Endpoint
from federator.names import (
    REGISTRY_REGISTERED,
    REGISTRY_REVIEWED,
    REGISTRY_SEEDED,
    REGISTRY_UPDATED,
)
from federator.registry.health import Health
from federator.registry.rows import (
    endpoint_of,
    last_check_of,
    now_iso,
    public_view,
    restore,
    row_columns,
    row_target,
    set_review,
    snapshot,
)
from federator.registry.rules import (
    DETAILS,
    NEEDS_APPROVAL,
    Refused,
    approval_problem,
    change_record,
    changed_fields,
    details_version,
    next_status,
    resume_problem,
    status_after_change,
    widening,
    widening_reason,
)
from federator.registry.secrets import CredentialCipher, CredentialsKeyError
from federator.registry.seedfile import SeedError, parse_seed
from federator.registry.tables import endpoint_reviews, upsert_endpoint
from federator.registry.urlguard import UnsafeURL, UrlGuard, UrlPolicy
from federator.storage import endpoints

__all__ = ["Registry", "SeedError", "parse_seed"]

class Registry:
    def __init__(self, engine: Engine, *, cipher: CredentialCipher | None = None,
                 guard: UrlGuard | None = None, cache_s: float = 2.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.engine = engine
        self.cipher = cipher or CredentialCipher(None)
        self.guard = guard or UrlGuard(UrlPolicy())
        self.health = Health(engine)
        self.cache_s = cache_s
        self._clock = clock
        self._cached: tuple[float, list[Endpoint]] | None = None

    # -- reading ------------------------------------------------------------------

    def all(self) -> list[Endpoint]:
        """Every endpoint, as read at most ``cache_s`` seconds ago. Every lookup
        routes over this list, and reading and decoding 150 rows costs more than
        the rest of a lookup's own work; a change made through this process is
        seen at once (``invalidate``), one made through another broker process
        within ``cache_s``."""
        cached = self._cached
        now = self._clock()
        if cached is not None and now - cached[0] < self.cache_s:
            return list(cached[1])
        with self.engine.connect() as conn:
            rows = conn.execute(select(endpoints).order_by(endpoints.c.id)).mappings().all()
        found = [endpoint_of(r) for r in rows]
        if self.cache_s > 0:
            self._cached = (now, found)
        return list(found)

    def invalidate(self) -> None:
        """Forget the cached list: the next ``all()`` reads the database."""
        self._cached = None

    def get(self, endpoint_id: str) -> Endpoint | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(endpoints).where(endpoints.c.id == endpoint_id)).mappings().first()
        return endpoint_of(row) if row else None

    def describe(self, authority: str | None = None) -> list[dict[str, Any]]:
        """Endpoints as the API shows them (never their credentials); one
        authority's only when ``authority`` is given."""
        query = select(endpoints, endpoint_reviews.c.reason).outerjoin(
            endpoint_reviews, endpoint_reviews.c.endpoint_id == endpoints.c.id
        ).order_by(endpoints.c.id)
        if authority is not None:
            query = query.where(endpoints.c.id == authority)
        with self.engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
            return [public_view(r, last_check_of(conn, r["id"])) for r in rows]

    def describe_one(self, endpoint_id: str) -> dict[str, Any] | None:
        found = [d for d in self.describe(endpoint_id) if d["id"] == endpoint_id]
        return found[0] if found else None

    def credentials(self, endpoint_id: str) -> dict[str, str]:
        """The decrypted credentials for an outbound client (empty when none), as
        in force now: a staged SMART key whose time has come is the key."""
        with self.engine.connect() as conn:
            token = conn.execute(select(endpoints.c.credentials)
                                 .where(endpoints.c.id == endpoint_id)).scalar()
        return in_force(self.cipher.decrypt(token), time.time()) if token else {}

    def has_credentials(self) -> bool:
        with self.engine.connect() as conn:
            return conn.execute(select(endpoints.c.id)
                                .where(endpoints.c.credentials.is_not(None)).limit(1)
                                ).first() is not None

    # -- changes ------------------------------------------------------------------

    def register(self, data: Mapping[str, Any], actor: Mapping[str, Any],
                 trail: AuditTrail) -> dict[str, Any]:
        """A new endpoint, ``pending`` approval. ``Refused(409)`` when the id exists."""
        endpoint_id = data["id"]
        if self._row(endpoint_id) is not None:
            raise Refused(409, f"Endpoint {endpoint_id} is already registered; change it "
                               "with PATCH instead.")
        now = now_iso()
        values = {**row_columns(data, self.cipher), "status": "pending",
                  "created_at": now, "updated_at": now}

        def apply(conn: Connection) -> None:
            conn.execute(endpoints.insert().values(id=endpoint_id, **values))
            set_review(conn, endpoint_id, None, actor, registered=True)

        self._audited(endpoint_id, apply, trail, REGISTRY_REGISTERED, actor,
                      protocol=data["protocol"], url=data["url"],
                      coverage=list(data["coverage"]),
                      credentials=bool(data.get("credentials")))
        return self._shown(endpoint_id)

    def change(self, endpoint_id: str, update: Mapping[str, Any], actor: Mapping[str, Any],
               trail: AuditTrail, *, reapprove: bool = True) -> dict[str, Any]:
        """Change details. A change that widens who receives children's identities
        (``rules.widening``) sends the endpoint back to ``pending``, the status
        reason saying what widened; narrowing coverage applies at once.
        Credentials equal to the stored ones are no change. ``reapprove=False``:
        new credentials keep the status (the operator's rotation of the broker's
        own SMART key, whose old key still signs)."""
        row = self._row(endpoint_id)
        if row is None:
            raise Refused(404, f"No endpoint {endpoint_id}.")
        current = {**row, "coverage": json.loads(row["coverage"]),
                   "policy": json.loads(row["policy"]) if row["policy"] else None}
        changed = changed_fields(current, update, credentials_given=self._new_credentials(
            row, update.get("credentials")))
        if not changed:
            return self._shown(endpoint_id)
        widened = widening(current, update, changed if reapprove else
                           [c for c in changed if c != "credentials"])
        status = status_after_change(row["status"], changed, widened)
        values: dict[str, Any] = {k: update[k] for k in changed if k != "credentials"}
        if "coverage" in values:
            values["coverage"] = json.dumps(values["coverage"])
        if "policy" in values:
            values["policy"] = json.dumps(values["policy"]) if values["policy"] else None
        if "credentials" in changed:
            values["credentials"] = self.cipher.encrypt(update["credentials"])
        values.update(status=status, updated_at=now_iso())
        earlier = self._reason(endpoint_id) if row["status"] == "pending" else None
        reason = None
        if widened and (row["status"] != "pending" or (earlier or "").startswith(NEEDS_APPROVAL)):
            reason = widening_reason(current, update, widened, earlier)
        elif status != row["status"]:
            reason = "details changed: needs approval again"

        def apply(conn: Connection) -> None:
            result = conn.execute(endpoints.update().where(
                endpoints.c.id == endpoint_id, endpoints.c.updated_at == row["updated_at"],
            ).values(**values))
            if result.rowcount != 1:
                raise Refused(409, "The endpoint changed meanwhile; read it and try again.")
            if reason is not None:
                set_review(conn, endpoint_id, reason, actor)

        self._audited(endpoint_id, apply, trail, REGISTRY_UPDATED, actor,
                      fields=changed, changes=change_record(current, update, changed),
                      widened=widened, status_before=row["status"], status=status)
        return self._shown(endpoint_id)

    def _new_credentials(self, row: Mapping[str, Any], given: Mapping[str, str] | None
                         ) -> bool:
        """Whether ``given`` credentials differ from the stored ones (unreadable
        stored ones count as different)."""
        if not given:
            return False
        if row["credentials"] is None:
            return True
        try:
            return self.cipher.decrypt(row["credentials"]) != dict(given)
        except CredentialsKeyError:
            return True

    def _reason(self, endpoint_id: str) -> str | None:
        with self.engine.connect() as conn:
            return conn.execute(select(endpoint_reviews.c.reason).where(
                endpoint_reviews.c.endpoint_id == endpoint_id)).scalar()

    def transition(self, endpoint_id: str, action: str, reason: str | None,
                   actor: Mapping[str, Any], trail: AuditTrail, *,
                   version: str | None = None) -> dict[str, Any]:
        """Approve, reject, suspend or resume. Approval needs a passing conformance
        check of the endpoint as it is (``rules.approval_problem``; ``Refused(409)``
        with the reason), and approves exactly the details it read: a change in
        between refuses it, as does a ``version`` (what the approver was shown,
        ``rules.details_version``) that is no longer the endpoint's. Its record
        says what was approved."""
        row = self._row(endpoint_id)
        if row is None:
            raise Refused(404, f"No endpoint {endpoint_id}.")
        status = next_status(action, row["status"])
        if action == "resume":
            with self.engine.connect() as conn:
                suspended_by = conn.execute(select(endpoint_reviews.c.changed_by_role).where(
                    endpoint_reviews.c.endpoint_id == endpoint_id)).scalar()
            problem = resume_problem(actor.get("actor_role"), suspended_by)
            if problem:
                raise Refused(403, problem)
        if version is not None and version != details_version(row):
            raise Refused(409, "The endpoint's details changed since you read them: read "
                               "them again before you " + action + " it.")
        extra: dict[str, Any] = {}
        if action == "approve":
            with self.engine.connect() as conn:
                check = last_check_of(conn, endpoint_id)
            problem = approval_problem(check, row_target(row))
            if problem:
                raise Refused(409, problem)
            assert check is not None
            extra = {"approved": {**{k: row[k] for k in DETAILS},
                                  "coverage": json.loads(row["coverage"]),
                                  "policy": json.loads(row["policy"]) if row["policy"]
                                  else None,
                                  "credentials_stored": row["credentials"] is not None},
                     "check_at": check["at"]}
        unchanged = [endpoints.c[k] == row[k] for k in DETAILS] + [
            endpoints.c.credentials.is_(None) if row["credentials"] is None
            else endpoints.c.credentials == row["credentials"]] if action == "approve" else []

        def apply(conn: Connection) -> None:
            result = conn.execute(endpoints.update().where(
                endpoints.c.id == endpoint_id, endpoints.c.status == row["status"], *unchanged,
            ).values(status=status, updated_at=now_iso()))
            if result.rowcount != 1:
                raise Refused(409, "The endpoint changed meanwhile; read it and try again.")
            set_review(conn, endpoint_id, reason, actor)

        self._audited(endpoint_id, apply, trail, REGISTRY_REVIEWED[action], actor,
                      status_before=row["status"], status=status, reason=reason, **extra)
        return self._shown(endpoint_id)

    def checkable(self, endpoint_id: str) -> tuple[Endpoint, str] | None:
        """The endpoint and its connection target, read together (what a check tests)."""
        row = self._row(endpoint_id)
        return (endpoint_of(row), row_target(row)) if row else None

    def _audited(self, endpoint_id: str, apply: Callable[[Connection], None],
                 trail: AuditTrail, event: str, actor: Mapping[str, Any],
                 **fields: Any) -> None:
        """Apply the change, then audit it; undo the change if the audit fails."""
        with self.engine.connect() as conn:
            before = snapshot(conn, endpoint_id)
        try:
            with self.engine.begin() as conn:
                apply(conn)
        finally:
            self.invalidate()
        try:
            trail.append(event, **actor, endpoint=endpoint_id, **fields)
        except AuditUnavailable:
            with self.engine.begin() as conn:
                restore(conn, endpoint_id, before)
            self.invalidate()
            raise

    def _row(self, endpoint_id: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(endpoints).where(endpoints.c.id == endpoint_id)
                               ).mappings().first()
        return dict(row) if row else None

    def _shown(self, endpoint_id: str) -> dict[str, Any]:
        shown = self.describe_one(endpoint_id)
        assert shown is not None
        return shown

    # -- seeding ------------------------------------------------------------------

    def seed(self, path: Path, trail: AuditTrail) -> list[str]:
        """Upsert every ``[[endpoint]]`` of the file as ``active``; audited.

        URLs get the static checks (scheme, literal addresses); their names are
        checked again at each connection. Credentials are stored encrypted.
        """
        entries = parse_seed(path.read_bytes())
        for entry in entries:
            for url in (entry["url"], entry["credentials"].get("token_url")):
                if url is None:
                    continue
                try:
                    self.guard.check_static(url)
                except UnsafeURL as e:
                    raise SeedError(f"registry seed endpoint {entry['id']}: {e}") from e
        rows = []
        for entry in entries:
            try:
                rows.append({**row_columns(entry, self.cipher), "status": "active",
                             "updated_at": now_iso(), "id": entry["id"]})
            except CredentialsKeyError as e:
                raise SeedError(f"registry seed endpoint {entry['id']}: {e}") from e
        # One upsert per endpoint (no read-then-insert): several broker processes
        # starting at once on an empty database all seed, and none fails.
        with self.engine.begin() as conn:
            for row in rows:
                conn.execute(upsert_endpoint(self.engine.dialect.name, row, created_at=now_iso()))
        self.invalidate()
        ids = [e["id"] for e in entries]
        trail.append(REGISTRY_SEEDED, actor_id="system", actor_role="operator",
                     endpoints=ids)
        return ids
