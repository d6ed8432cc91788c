"""Settings, read once from ``FEDERATOR_*`` environment variables.

Each setting is declared once, as a field of ``Settings`` made by
``setting()``: its default, a one-line description for operators and, where
needed, how it is read. The variable is ``FEDERATOR_`` and the field's name in
capitals; the parser follows the field's type (a whole number has a minimum,
1 unless declared). ``Settings.from_env`` reads every declared field, and
``federator settings docs`` writes ``docs/settings.md`` from the same
declarations (``federator.settings_doc``).

Defaults are safe for production: no secret has a usable default. In
``development`` (the demo, the tests) missing secrets are generated per
process and the broker says so; in ``production`` it refuses to start.
"""

from __future__ import annotations

import functools
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from federator.declared import (
    ConfigError,
    Declaration,
    Declared,
    declarations_of,
    low_entropy,
    no_trailing_slash,
    setting,
    variable,
)

__all__ = ["ROLE_NAMES", "ConfigError", "Declaration", "Declared", "Settings", "declarations",
           "low_entropy", "setting", "variable"]

ENVIRONMENTS = ("development", "production")
#: Federator's roles (federator.auth.tokens.ROLES, which reads them from here).
ROLE_NAMES = ("practitioner", "auditor", "broker-admin", "authority-admin")
@dataclass(frozen=True)
class Settings:
    env: str = setting(
        "production", "Which rules apply: only development generates missing secrets and "
        "allows the demo, plain http and loopback endpoints.", choices=ENVIRONMENTS)
    instance_dir: Path = setting(
        Path("instance"), "Folder for the SQLite file and the keys made in development.")
    database_url: str | None = setting(
        None, "SQLAlchemy URL of the database, e.g. `postgresql+psycopg://user@host/db`.",
        unset="SQLite: `federator.sqlite` in the instance folder")
    redis_url: str | None = setting(
        None, "Redis holding web sessions, rate limits, circuit breakers, replay nonces and "
        "OAuth tokens for every broker process; needed for more than one worker in "
        "production.",
        unset="none: that state is kept in each process")
    redis_prefix: str = setting(
        "federator:", "Prefix of every Redis key, so several brokers can share one Redis.")
    secret_key: str = setting(
        "", "Secret signing the forms' CSRF tokens, at least 32 random characters, the same "
        "on every host, not the audit key.",
        unset="generated per process in development; required in production")
    audit_key: str = setting(
        "", "HMAC key for child pseudonyms in the audit trail, at least 32 characters; "
        "never change it.", unset="generated per process in development; required in production")
    broker_id: str = setting(
        "federator", "This broker's name: the `iss` of signed lookups, the audit trail's log "
        "id and its User-Agent.")
    public_url: str = setting(
        "http://127.0.0.1:5000", "The address users reach; sign-in redirects are built on "
        "it (trailing `/` dropped).", parse=no_trailing_slash)
    service_name: str = setting(
        "Find who is working with a child", "The service's name, in every page's header "
        "and title.")
    service_owner: str = setting(
        "", "Who runs the service (e.g. `West Yorkshire councils and NHS trusts`), in every "
        "page's header and footer.", unset="none: the footer says only that the service "
        "is not run by GOV.UK")
    service_brand: str = setting(
        "own", "`own`: no GOV.UK crown or Crown copyright (the Design System's rule for "
        "services not on GOV.UK, such as one run by councils and NHS bodies); `govuk`: "
        "the GOV.UK header and footer, for a service that is on GOV.UK.",
        choices=("own", "govuk"))
    signing_key_file: Path | None = setting(
        None, "The broker's ES256 signing key ring (JWK JSON, mode 0600): signs lookups and "
        "audit checkpoints.", unset="`signing-key.jwk.json` in the instance folder, created "
        "in development; required in production")
    oidc_issuer: str | None = setting(
        None, "The identity provider's issuer URL (discovery and JWKS), https in production "
        "(trailing `/` dropped).", parse=no_trailing_slash,
        unset="none: no sign-in and no bearer tokens; required in production")
    oidc_client_id: str = setting(
        "federator", "The broker's client id at the identity provider.")
    oidc_client_secret: str | None = setting(
        None, "The broker's client secret at the identity provider.",
        unset="none: a public client (PKCE, no client authentication)")
    oidc_audience: str = setting(
        "federator", "The audience API bearer tokens must name.", fallback="oidc_client_id")
    roles_claim: str = setting(
        "roles", "The token claim holding roles; a dotted path works (`realm_access.roles`).")
    registry_seed: Path | None = setting(
        None, "TOML file of endpoints upserted as `active` at start-up "
        "(see `config/registry.example.toml`).")
    allowed_networks: tuple[str, ...] = setting(
        (), "Private networks (CIDRs) endpoints may resolve into, which the URL guard "
        "would otherwise refuse.")
    ca_file: Path | None = setting(
        None, "PEM file of the certificate authorities trusted for every outbound TLS call "
        "(authorities' endpoints, the identity provider, alert webhooks, `audit verify "
        "--keys`), instead of the default store; for a private or internal CA.",
        unset="the default store: the system's for calls to authorities, certifi's for the "
        "rest")
    credentials_key: str = setting(
        "", "Fernet key(s), comma-separated, newest first, encrypting endpoint credentials in "
        "the registry.",
        unset="none: credentials cannot be stored (development keeps a key in "
        "`credentials.key` in the instance folder)")
    key_overlap_s: int = setting(
        7 * 24 * 3600, "Seconds an old key stays published after a rotation: the broker's "
        "signing key (`federator keys rotate`) and an endpoint's SMART client key.", minimum=0)
    postcode_table: Path | None = setting(
        None, "CSV of `district,gss_code` routing a child's postcodes to authorities' areas.",
        unset="`config/postcodes.csv` in the source tree")
    deadline_default_ms: int = setting(
        5000, "A lookup's deadline in milliseconds when the request names none.", minimum=100)
    deadline_max_ms: int = setting(
        15000, "The longest deadline a request may ask for, in milliseconds.", minimum=100)
    consent_max_age_days: int = setting(
        365, "Consent older than this many days is refused and must be asked again.")
    fanout_workers: int = setting(
        32, "Threads per process for calls to authorities without an event-loop client "
        "(FHIR R4, plug-ins).")
    max_answer_bytes: int = setting(
        1024 * 1024, "The largest answer read from an authority, in bytes.", minimum=1024)
    max_professionals: int = setting(
        200, "The most professionals read from one authority's answer: the rest are left "
        "out and its outcome says how many.")
    govuk_frontend_dir: Path | None = setting(
        None, "Folder of the govuk-frontend assets served under `/assets`.",
        unset="`node_modules/govuk-frontend/dist/govuk` in the source tree")
    breaker_failures: int = setting(
        5, "Consecutive timeouts or errors that open an endpoint's circuit breaker.")
    breaker_window_s: int = setting(
        60, "Seconds after which a breaker's failure count expires.")
    breaker_cooldown_s: int = setting(
        30, "Seconds an open breaker stays open before one lookup probes the endpoint.")
    oidc_scopes: str = setting(
        "openid profile email roles", "Scopes asked for at web sign-in.")
    role_map: tuple[str, ...] = setting(
        (), "`value=role` pairs, comma-separated, mapping the values of the roles claim to "
        "Federator's roles (`practitioner`, `auditor`, `broker-admin`, `authority-admin`), "
        "e.g. `Federator.Practitioner=practitioner` (Entra app roles) or "
        "`S8000:G8000:R8001=practitioner` (CIS2 role codes); set, only the listed values "
        "grant a role.", unset="none: the claim's values are Federator's role names")
    role_selector: str = setting(
        "", "`claim=field`: when a token carries `claim`, only the objects of the roles "
        "claim's list whose `field` equals it count, for the roles and the organisation; "
        "without `claim`, a list of several objects grants nothing: "
        "`selected_roleid=person_roleid` keeps CIS2's role chosen at sign-in.",
        unset="none: every object of the list counts")
    organisation_claim: str = setting(
        "organisation", "The token claim holding the user's organisation.")
    authority_claim: str = setting(
        "authority", "The token claim naming an authority admin's authority (without it "
        "the role is not granted).")
    session_idle_minutes: int = setting(
        15, "Minutes without a request after which a signed-in session ends.")
    session_max_hours: int = setting(
        10, "Hours after sign-in at which a session ends, however busy.")
    session_refresh_minutes: int = setting(
        5, "Minutes after which a signed-in user's roles are read again from the identity "
        "provider (userinfo, after a refresh grant when it gave a refresh token); a user it "
        "no longer knows, or who lost every role, is signed out.")
    required_acr: tuple[str, ...] = setting(
        (), "Authentication levels (`acr` values) of which sign-in and API bearer tokens must "
        "name one, e.g. the provider's value for AAL3; others are refused (a page, or 401).",
        unset="none: any authentication level is accepted")
    oidc_token_clients: tuple[str, ...] = setting(
        (), "Client ids whose access tokens the API accepts (the token's `client_id`, else "
        "`azp`); set, every bearer token must name one, and tokens without `typ: at+jwt` "
        "are accepted from them.",
        unset="none: only access tokens with `typ: at+jwt` (RFC 9068), of any client")
    lookups_per_minute: int = setting(
        10, "Lookups one practitioner may send per minute, counted over every route (API, "
        "form, streamed, retries); more are refused (429).")
    lookups_per_day: int = setting(
        200, "Lookups one practitioner may send per day, counted over every route; more are "
        "refused (429).")
    refused_lookups_per_minute: int = setting(
        30, "Refused lookups (bad input, policy, a retry refused) one practitioner may make "
        "per minute; beyond it they are answered 429 and not recorded one by one.")
    refused_lookups_per_day: int = setting(
        300, "Refused lookups one practitioner may make per day; beyond it they are answered "
        "429 and not recorded one by one.")
    organisation_lookups_per_minute: int = setting(
        300, "Lookups all the practitioners of one organisation may send per minute; more "
        "are refused (429).")
    organisation_lookups_per_day: int = setting(
        10000, "Lookups all the practitioners of one organisation may send per day; more are "
        "refused (429).")
    proofs_per_minute: int = setting(
        120, "Consistency proofs one client address may ask of the public proof endpoint "
        "(`/api/v1/transparency/consistency`) per minute (IPv6: per /64; behind a proxy "
        "listed in `GUNICORN_FORWARDED_ALLOW_IPS`, the address it forwarded for); more "
        "are answered 429 with Retry-After. 120 lets one witness process check every "
        "checkpoint at the federation's full rate; 0: no limit.", minimum=0)
    metrics_token: str = setting(
        "", "Bearer token Prometheus must send to read `/metrics`.",
        unset="none: `/metrics` is open in development and refused (403) in production")
    audit_checkpoint_every: int = setting(
        1000, "A signed checkpoint (Merkle root and chain head) every this many audit "
        "records.")
    audit_checkpoint_interval_s: int = setting(
        60, "Seconds after which records added since the latest checkpoint get one of their "
        "own, signed by whichever broker process takes the lock (0: on count only).",
        minimum=0)
    audit_retention_days: int | None = setting(
        None, "Audit records older than this many days may be pruned (`federator audit prune`, "
        "run as the tables' owner): their bodies go, their hashes stay, so the trail still "
        "verifies. At least 30 (the trail's own reads look back up to a week).", minimum=30,
        unset="never: nothing is pruned until a retention period is decided and set")
    audit_per_hour: int = setting(
        20, "Audit flag `volume_hour` when a practitioner makes more than this many lookups "
        "within an hour.")
    audit_per_day: int = setting(
        80, "Audit flag `volume_day` when a practitioner makes more than this many lookups "
        "within a day.")
    audit_office_hours: str = setting(
        "08:00-18:00", "Audit flag `out_of_hours` for lookups outside these hours "
        "(`HH:MM-HH:MM`), Monday to Friday; bank holidays are not known.")
    audit_timezone: str = setting(
        "Europe/London", "The time zone (IANA name) of `FEDERATOR_AUDIT_OFFICE_HOURS`.")
    audit_no_match_streak: int = setting(
        10, "Audit flag `no_match_streak` when this many of a practitioner's lookups in a row "
        "found nobody.")
    audit_child_organisations: int = setting(
        3, "Audit flag `child_many_organisations` when this many organisations (this lookup's "
        "included) have looked up one child within the window.", minimum=2)
    audit_child_window_hours: int = setting(
        72, "The window, in hours, of `FEDERATOR_AUDIT_CHILD_ORGANISATIONS`.")
    audit_repeat_lookups: int = setting(
        3, "Audit flag `repeat_lookups` when one practitioner looks up one child more than "
        "this many times within the window (retries not counted).")
    audit_repeat_window_hours: int = setting(
        24, "The window, in hours, of `FEDERATOR_AUDIT_REPEAT_LOOKUPS`.")
    audit_sustained_hours: int = setting(
        3, "Audit flag `sustained_volume` (and an alert on the auditors' pages) when a "
        "practitioner sends at least `FEDERATOR_AUDIT_SUSTAINED_PER_HOUR` lookups in each of "
        "this many hours in a row (0: never).", minimum=0)
    audit_sustained_per_hour: int = setting(
        8, "The lookups per hour of `FEDERATOR_AUDIT_SUSTAINED_HOURS`.")
    alert_webhook: str | None = setting(
        None, "URL the broker POSTs a JSON alert to when an audit flag fires: the record's "
        "seq, event, time and flags, never who asked or the child (https in production).",
        unset="none: no webhook alerts")
    alert_syslog: str | None = setting(
        None, "`host:port` of a syslog receiver sent an RFC 5424 message over UDP for each "
        "audit flag fired (seq and flag only).", unset="none: no syslog alerts")
    alert_email: tuple[str, ...] = setting(
        (), "The auditors' e-mail addresses, comma-separated, told when an audit flag fires "
        "(seq and flag only; needs `FEDERATOR_ALERT_SMTP_URL`).",
        unset="none: no e-mail alerts")
    alert_smtp_url: str | None = setting(
        None, "The mail server for alert e-mails: `smtp://[user:password@]host[:port]` "
        "(`?starttls=true` to upgrade) or `smtps://...`.", unset="none")
    alert_email_from: str = setting(
        "federator@localhost", "The sender of alert e-mails.")
    otel_exporter_otlp_endpoint: str | None = setting(
        None, "OpenTelemetry: send traces (a span per lookup and per authority call, "
        "docs/tracing.md) by OTLP/HTTP to this collector, e.g. `http://127.0.0.1:4318` "
        "(`/v1/traces` is added). The SDK's own `OTEL_*` variables apply too.",
        standard="OTEL_EXPORTER_OTLP_ENDPOINT", parse=no_trailing_slash,
        unset="no tracing: no spans made, no `traceparent` sent")
    retry_window_s: int = setting(
        86400, "Seconds within which the practitioner who made a lookup may retry it, asking "
        "again the authorities that timed out, failed or were unavailable.")
    generated: tuple[str, ...] = field(default=(), compare=False)

    @property
    def development(self) -> bool:
        return self.env == "development"

    @property
    def ca_bundle(self) -> str | None:
        """``FEDERATOR_CA_FILE`` as outbound clients take it (None: their default store)."""
        return str(self.ca_file) if self.ca_file else None

    @property
    def role_mapping(self) -> dict[str, str]:
        """``FEDERATOR_ROLE_MAP`` as a dict (checked by ``checked``)."""
        return {value.strip(): role.strip()
                for value, _, role in (pair.partition("=") for pair in self.role_map)}

    @property
    def role_selection(self) -> tuple[str, str] | None:
        """``FEDERATOR_ROLE_SELECTOR`` as (claim, field), or None (checked by ``checked``)."""
        if not self.role_selector:
            return None
        claim_name, _, item_field = self.role_selector.partition("=")
        return claim_name.strip(), item_field.strip()

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
        return cls(**{d.name: d.read(env) for d in declarations()}).checked()

    def checked(self) -> Settings:
        """Fill development secrets, refuse unsafe production settings."""
        if self.deadline_default_ms > self.deadline_max_ms:
            raise ConfigError("FEDERATOR_DEADLINE_DEFAULT_MS is above FEDERATOR_DEADLINE_MAX_MS")
        if self.role_selector and not all(
                part.strip() for part in self.role_selector.partition("=")[::2]):
            raise ConfigError("FEDERATOR_ROLE_SELECTOR must look like claim=field "
                              "(for example selected_roleid=person_roleid)")
        for pair in self.role_map:
            value, _, role = pair.partition("=")
            if not value.strip() or role.strip() not in ROLE_NAMES:
                raise ConfigError(f"FEDERATOR_ROLE_MAP: {pair!r} is not value=role with role "
                                  f"one of {', '.join(ROLE_NAMES)}")
        missing = [
            name for name, value in
            (("FEDERATOR_SECRET_KEY", self.secret_key), ("FEDERATOR_AUDIT_KEY", self.audit_key))
            if len(value) < 32
        ]
        if self.env == "production":
            problems = [f"{m} must be set to at least 32 characters" for m in missing]
            problems += [
                f"{name} is too predictable (repeated or few different characters): use a "
                "random value, e.g. `python -c 'import secrets; print(secrets.token_urlsafe(48))'`"
                for name, value in (("FEDERATOR_SECRET_KEY", self.secret_key),
                                    ("FEDERATOR_AUDIT_KEY", self.audit_key))
                if name not in missing and low_entropy(value)]
            if not missing and self.secret_key == self.audit_key:
                problems.append("FEDERATOR_SECRET_KEY and FEDERATOR_AUDIT_KEY must differ")
            if not self.public_url.startswith("https://"):
                problems.append("FEDERATOR_PUBLIC_URL must be https in production")
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


@functools.cache
def declarations() -> tuple[Declaration, ...]:
    """Every declared setting, in the order of the ``Settings`` fields."""
    return declarations_of(Settings)
