"""Settings, read once from ``FEDERATOR_*`` environment variables.

Defaults are safe for production: no secret has a usable default. In
``development`` (the demo, the tests) missing secrets are generated per
process and the broker says so; in ``production`` it refuses to start.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

ENVIRONMENTS = ("development", "production")


class ConfigError(ValueError):
    """A setting is missing or wrong; the message names the variable."""


@dataclass(frozen=True)
class Settings:
    env: str = "production"
    instance_dir: Path = Path("instance")
    database_url: str | None = None
    redis_url: str | None = None
    redis_prefix: str = "federator:"
    secret_key: str = ""
    audit_key: str = ""
    broker_id: str = "federator"
    public_url: str = "http://127.0.0.1:5000"
    signing_key_file: Path | None = None
    oidc_issuer: str | None = None
    oidc_client_id: str = "federator"
    oidc_client_secret: str | None = None
    oidc_audience: str = "federator"
    roles_claim: str = "roles"
    registry_seed: Path | None = None
    allowed_networks: tuple[str, ...] = ()
    credentials_key: str = ""  # Fernet key(s) for endpoint credentials, newest first
    key_overlap_s: int = 7 * 24 * 3600  # an old signing key stays published this long
    postcode_table: Path | None = None
    deadline_default_ms: int = 5000
    deadline_max_ms: int = 15000
    consent_max_age_days: int = 365
    fanout_workers: int = 32
    max_answer_bytes: int = 1024 * 1024
    govuk_frontend_dir: Path | None = None  # node_modules/govuk-frontend/dist/govuk
    breaker_failures: int = 5
    breaker_window_s: int = 60
    breaker_cooldown_s: int = 30
    oidc_scopes: str = "openid profile email roles"
    organisation_claim: str = "organisation"
    authority_claim: str = "authority"
    session_idle_minutes: int = 15
    session_max_hours: int = 10
    lookups_per_minute: int = 10
    lookups_per_day: int = 200
    metrics_token: str = ""  # bearer token Prometheus sends to /metrics (federator.metrics)
    audit_checkpoint_every: int = 1000
    audit_per_hour: int = 20
    audit_per_day: int = 80
    audit_office_hours: str = "08:00-18:00"
    audit_timezone: str = "Europe/London"
    audit_no_match_streak: int = 10
    audit_child_organisations: int = 3
    audit_child_window_hours: int = 72
    audit_repeat_lookups: int = 3
    audit_repeat_window_hours: int = 24
    retry_window_s: int = 86400
    generated: tuple[str, ...] = field(default=(), compare=False)

    @property
    def development(self) -> bool:
        return self.env == "development"

    @property
    def production(self) -> bool:
        return self.env == "production"

    @property
    def sqlalchemy_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.instance_dir / 'federator.sqlite').resolve()}"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ

        def get(name: str) -> str | None:
            value = env.get(f"FEDERATOR_{name}")
            return value.strip() if value and value.strip() else None

        def integer(name: str, default: int, minimum: int = 1) -> int:
            raw = get(name)
            if raw is None:
                return default
            try:
                value = int(raw)
            except ValueError as e:
                raise ConfigError(f"FEDERATOR_{name} must be a whole number") from e
            if value < minimum:
                raise ConfigError(f"FEDERATOR_{name} must be at least {minimum}")
            return value

        mode = get("ENV") or "production"
        if mode not in ENVIRONMENTS:
            raise ConfigError(f"FEDERATOR_ENV must be one of {', '.join(ENVIRONMENTS)}")
        instance = Path(get("INSTANCE_DIR") or "instance")
        settings = cls(
            env=mode,
            instance_dir=instance,
            database_url=get("DATABASE_URL"),
            redis_url=get("REDIS_URL"),
            redis_prefix=get("REDIS_PREFIX") or "federator:",
            secret_key=get("SECRET_KEY") or "",
            audit_key=get("AUDIT_KEY") or "",
            broker_id=get("BROKER_ID") or "federator",
            public_url=(get("PUBLIC_URL") or "http://127.0.0.1:5000").rstrip("/"),
            signing_key_file=Path(p) if (p := get("SIGNING_KEY_FILE")) else None,
            oidc_issuer=(i.rstrip("/") if (i := get("OIDC_ISSUER")) else None),
            oidc_client_id=get("OIDC_CLIENT_ID") or "federator",
            oidc_client_secret=get("OIDC_CLIENT_SECRET"),
            oidc_audience=get("OIDC_AUDIENCE") or get("OIDC_CLIENT_ID") or "federator",
            roles_claim=get("ROLES_CLAIM") or "roles",
            registry_seed=Path(p) if (p := get("REGISTRY_SEED")) else None,
            allowed_networks=tuple(
                n.strip() for n in (get("ALLOWED_NETWORKS") or "").split(",") if n.strip()
            ),
            postcode_table=Path(p) if (p := get("POSTCODE_TABLE")) else None,
            credentials_key=get("CREDENTIALS_KEY") or "",
            key_overlap_s=integer("KEY_OVERLAP_S", 7 * 24 * 3600, 0),
            deadline_default_ms=integer("DEADLINE_DEFAULT_MS", 5000, 100),
            deadline_max_ms=integer("DEADLINE_MAX_MS", 15000, 100),
            consent_max_age_days=integer("CONSENT_MAX_AGE_DAYS", 365),
            fanout_workers=integer("FANOUT_WORKERS", 32),
            max_answer_bytes=integer("MAX_ANSWER_BYTES", 1024 * 1024, 1024),
            govuk_frontend_dir=Path(p) if (p := get("GOVUK_FRONTEND_DIR")) else None,
            breaker_failures=integer("BREAKER_FAILURES", 5),
            breaker_window_s=integer("BREAKER_WINDOW_S", 60),
            breaker_cooldown_s=integer("BREAKER_COOLDOWN_S", 30),
            oidc_scopes=get("OIDC_SCOPES") or "openid profile email roles",
            organisation_claim=get("ORGANISATION_CLAIM") or "organisation",
            authority_claim=get("AUTHORITY_CLAIM") or "authority",
            session_idle_minutes=integer("SESSION_IDLE_MINUTES", 15),
            session_max_hours=integer("SESSION_MAX_HOURS", 10),
            lookups_per_minute=integer("LOOKUPS_PER_MINUTE", 10),
            lookups_per_day=integer("LOOKUPS_PER_DAY", 200),
            metrics_token=get("METRICS_TOKEN") or "",
            audit_checkpoint_every=integer("AUDIT_CHECKPOINT_EVERY", 1000),
            audit_per_hour=integer("AUDIT_PER_HOUR", 20),
            audit_per_day=integer("AUDIT_PER_DAY", 80),
            audit_office_hours=get("AUDIT_OFFICE_HOURS") or "08:00-18:00",
            audit_timezone=get("AUDIT_TIMEZONE") or "Europe/London",
            audit_no_match_streak=integer("AUDIT_NO_MATCH_STREAK", 10),
            audit_child_organisations=integer("AUDIT_CHILD_ORGANISATIONS", 3, 2),
            audit_child_window_hours=integer("AUDIT_CHILD_WINDOW_HOURS", 72),
            audit_repeat_lookups=integer("AUDIT_REPEAT_LOOKUPS", 3),
            audit_repeat_window_hours=integer("AUDIT_REPEAT_WINDOW_HOURS", 24),
            retry_window_s=integer("RETRY_WINDOW_S", 86400),
        )
        return settings.checked()

    def checked(self) -> Settings:
        """Fill development secrets, refuse unsafe production settings."""
        if self.deadline_default_ms > self.deadline_max_ms:
            raise ConfigError("FEDERATOR_DEADLINE_DEFAULT_MS is above FEDERATOR_DEADLINE_MAX_MS")
        missing = [
            name for name, value in
            (("FEDERATOR_SECRET_KEY", self.secret_key), ("FEDERATOR_AUDIT_KEY", self.audit_key))
            if len(value) < 32
        ]
        if self.env == "production":
            problems = [f"{m} must be set to at least 32 characters" for m in missing]
            if not self.oidc_issuer:
                problems.append("FEDERATOR_OIDC_ISSUER must be set")
            elif not self.oidc_issuer.startswith("https://"):
                problems.append("FEDERATOR_OIDC_ISSUER must be https in production")
            if self.signing_key_file is None:
                problems.append("FEDERATOR_SIGNING_KEY_FILE must be set in production")
            if problems:
                raise ConfigError("; ".join(problems))
            return self
        generated = {m: secrets.token_urlsafe(48) for m in missing}
        return replace(
            self,
            secret_key=generated.get("FEDERATOR_SECRET_KEY", self.secret_key),
            audit_key=generated.get("FEDERATOR_AUDIT_KEY", self.audit_key),
            generated=tuple(generated),
        )
