"""Settings of one adapter kit instance, read from a TOML file."""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import re
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from adapters.kit.model import ModelError, load_model

SOURCES = ("csv", "sql")
#: The same as adapters.kit.matching.MOVED_HOUSE_MODES (kept here: settings import only
#: the pure model module).
MOVED_HOUSE_MODES = ("possible_match", "match_if_unique")
NOTIFY_MODES = ("immediate", "digest", "off")
#: How the kit's e-mails leave it: SMTP, or GOV.UK Notify's API (adapters.kit.govuk_notify)
NOTIFY_VIA = ("smtp", "govuk_notify")
NOTIFY_API = "https://api.notifications.service.gov.uk"
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
#: Settings read from the environment when the TOML file has none (secrets an
#: authority may prefer not to write in the file). docs/kit-settings.md lists them.
ENV_FALLBACKS = {"smtp_url": "KIT_SMTP_URL", "record_ref_key": "KIT_RECORD_REF_KEY",
                 "otlp_endpoint": "OTEL_EXPORTER_OTLP_ENDPOINT"}


class SettingsError(ValueError):
    """The settings file is missing a key or has a wrong value; the message names it."""


@dataclass(frozen=True)
class KitSettings:
    authority_id: str
    name: str
    #: the broker's public keys: https (http only to a loopback address)
    jwks_url: str
    #: the broker's id: a request whose token has another ``iss`` is refused
    broker_issuer: str
    source: str = "csv"
    csv_path: str | None = None
    sql_url: str | None = None
    sql_query: str | None = None
    redis_url: str | None = None
    #: Probabilities (adapters/kit/model.py): P(this record is the child) at which
    #: a record is a match, and at which it is a possible match (the requester is
    #: asked to call). Both strictly between 0 and 1. See adapters/kit/README.md.
    match_threshold: float = 0.99
    possible_threshold: float = 0.2
    #: A postcode given on both sides that agrees in nothing (moved house):
    #: "match_if_unique" (the probability decides; a match carries a notice) or
    #: "possible_match" (at most a possible match). See adapters/kit/README.md.
    moved_house: str = "match_if_unique"
    #: A JSON file of m/u values (``federator-adapter estimate``); the documented
    #: defaults when absent.
    match_model_path: str | None = None
    #: The secret that keys ``record_ref`` (HMAC-SHA256 of the record's child_ref),
    #: 32 characters or more; KIT_RECORD_REF_KEY when absent here. Without either
    #: the kit derives one from authority_id and warns (development only).
    record_ref_key: str | None = None
    simulate_delay_ms: int = 0
    max_body_bytes: int = 65536
    audit_log_path: str | None = None
    #: Telling the child's worker (adapters.kit.notify): immediate | digest | off.
    notify: str = "off"
    #: smtp://[user:password@]host:port (or smtps://); KIT_SMTP_URL when absent here.
    smtp_url: str | None = None
    #: Where notifications go when the child's record names no worker_email.
    team_mailbox: str | None = None
    notify_from: str = "federator-kit@localhost"
    #: "smtp" (smtp_url) or "govuk_notify": GOV.UK Notify's API, with the template below
    #: (its subject ``((subject))``, its body ``((body))``: docs/kit-notify.md).
    notify_via: str = "smtp"
    notify_template_id: str | None = None
    #: A file holding the Notify API key (its first line); KIT_NOTIFY_API_KEY when unset.
    notify_api_key_file: str | None = None
    #: Notify's API; another only for tests or Notify's own other environments.
    notify_base_url: str = NOTIFY_API
    notify_digest_s: int = 86400
    notify_queue: int = 1000
    #: The broker's latest signed audit checkpoint, as this kit witnesses it
    #: (adapters.kit.witness): a JSON file; unset, it is held in memory.
    witness_path: str | None = None
    #: The broker's consistency proofs; unset, next to jwks_url
    #: (``/api/v1/transparency/consistency``).
    witness_proof_url: str | None = None
    #: Who is e-mailed (through smtp_url) when the broker's trail stops extending
    #: the checkpoint the kit holds.
    admin_email: str | None = None
    #: A PEM file of the certificate authorities trusted for the broker's https
    #: (jwks_url, witness_proof_url) instead of certifi's: a broker behind a
    #: private or internal CA.
    ca_file: str | None = None

    #: OpenTelemetry: send traces (a server span per lookup, continuing the broker's
    #: ``traceparent``: docs/tracing.md) by OTLP/HTTP to this collector, e.g.
    #: http://127.0.0.1:4318; OTEL_EXPORTER_OTLP_ENDPOINT when absent here; unset, off.
    otlp_endpoint: str | None = None

    def __post_init__(self) -> None:
        validate_settings(self)


def validate_settings(s: KitSettings) -> None:
    for name in ("authority_id", "name", "jwks_url", "broker_issuer"):
        if not getattr(s, name):
            raise SettingsError(f"{name}: must not be empty")
    if not trusted_jwks_url(s.jwks_url):
        raise SettingsError("jwks_url: must be an https:// URL (http:// only to a loopback "
                            "address such as 127.0.0.1, for tests and the demo)")
    if s.source not in SOURCES:
        raise SettingsError(f"source: must be one of {', '.join(SOURCES)}, not {s.source!r}")
    if s.source == "csv" and not s.csv_path:
        raise SettingsError("csv_path: required when source is 'csv'")
    if s.source == "sql":
        if not s.sql_url:
            raise SettingsError("sql_url: required when source is 'sql'")
        if not s.sql_query:
            raise SettingsError("sql_query: required when source is 'sql'")
    for name in ("match_threshold", "possible_threshold"):
        value = getattr(s, name)
        if not 0.0 < value < 1.0:
            raise SettingsError(f"{name}: must be a probability between 0 and 1 "
                                f"(exclusive), not {value}")
    if s.possible_threshold > s.match_threshold:
        raise SettingsError("possible_threshold: must not be above match_threshold")
    if s.match_model_path is not None:
        try:
            load_model(s.match_model_path)
        except ModelError as e:
            raise SettingsError(f"match_model_path: {e}") from e
    if s.record_ref_key is not None and len(s.record_ref_key.strip()) < 32:
        raise SettingsError("record_ref_key: must be at least 32 characters")
    if s.record_ref_key is None and not _loopback_url(s.jwks_url):
        # derived from the public authority id, references could be recomputed from
        # guessable record ids: only for tests and the demo, on loopback
        raise SettingsError("record_ref_key: required (or set KIT_RECORD_REF_KEY) unless "
                            "the broker is on a loopback address")
    if s.moved_house not in MOVED_HOUSE_MODES:
        raise SettingsError(f"moved_house: must be one of {', '.join(MOVED_HOUSE_MODES)}, "
                            f"not {s.moved_house!r}")
    if s.simulate_delay_ms < 0:
        raise SettingsError("simulate_delay_ms: must not be negative")
    if s.max_body_bytes <= 0:
        raise SettingsError("max_body_bytes: must be positive")
    if s.notify not in NOTIFY_MODES:
        raise SettingsError(f"notify: must be one of {', '.join(NOTIFY_MODES)}, "
                            f"not {s.notify!r}")
    if s.notify_via not in NOTIFY_VIA:
        raise SettingsError(f"notify_via: must be one of {', '.join(NOTIFY_VIA)}, "
                            f"not {s.notify_via!r}")
    mails = s.notify != "off" or bool(s.admin_email)
    if s.notify_via == "smtp" and s.notify != "off" and not s.smtp_url:
        raise SettingsError("smtp_url: required when notify is on (or set KIT_SMTP_URL)")
    if s.notify_via == "govuk_notify" and mails:
        if not s.notify_template_id:
            raise SettingsError("notify_template_id: required when notify_via is govuk_notify")
        if not _UUID.match(s.notify_template_id.lower()):
            raise SettingsError("notify_template_id: must be the template's id (a UUID, "
                                "as Notify shows it)")
    if not trusted_jwks_url(s.notify_base_url):
        raise SettingsError("notify_base_url: must be an https:// URL (http:// only to a "
                            "loopback address, for tests)")
    if s.smtp_url and not s.smtp_url.startswith(("smtp://", "smtps://")):
        raise SettingsError("smtp_url: must start with smtp:// or smtps://")
    for name in ("notify_digest_s", "notify_queue"):
        if getattr(s, name) <= 0:
            raise SettingsError(f"{name}: must be positive")
    if s.otlp_endpoint and urlsplit(s.otlp_endpoint).scheme not in ("http", "https"):
        raise SettingsError("otlp_endpoint: must be an http:// or https:// URL")
    if s.witness_proof_url and not trusted_jwks_url(s.witness_proof_url):
        raise SettingsError("witness_proof_url: must be an https:// URL (http:// only to a "
                            "loopback address, for tests and the demo)")
    if s.ca_file is not None and not Path(s.ca_file).is_file():
        raise SettingsError(f"ca_file: no such file {s.ca_file}")
    if s.admin_email and s.notify_via == "smtp" and not s.smtp_url:
        raise SettingsError("smtp_url: required when admin_email is set (or set KIT_SMTP_URL)")


def trusted_jwks_url(url: str) -> bool:
    """https with a host, or http to a loopback address (127.0.0.0/8, ::1, localhost)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        return False
    if not host or parts.username or parts.password:
        return False
    if parts.scheme == "https":
        return True
    if parts.scheme != "http":
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _loopback_url(url: str) -> bool:
    """http or https to a loopback address (127.0.0.0/8, ::1, localhost)."""
    try:
        host = urlsplit(url).hostname
    except ValueError:
        return False
    if host == "localhost":
        return True
    try:
        return host is not None and ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _field_types() -> dict[str, Any]:
    return typing.get_type_hints(KitSettings)


def _check_type(name: str, value: Any, annotation: Any) -> Any:
    """Check one TOML value against the field's annotation; ints are fine for floats."""
    optional = False
    base = annotation
    if isinstance(annotation, types.UnionType):
        args = [a for a in annotation.__args__ if a is not type(None)]
        optional = len(args) < len(annotation.__args__)
        base = args[0]
    if value is None and optional:
        return None
    if base is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if base is int and isinstance(value, bool):
        raise SettingsError(f"{name}: must be an integer, not {value!r}")
    if not isinstance(value, base):
        raise SettingsError(f"{name}: must be {base.__name__}, not {type(value).__name__}")
    return value


def settings_from_mapping(data: dict[str, Any], *, base_dir: Path | None = None,
                          environ: Mapping[str, str] | None = None) -> KitSettings:
    """Build settings from a mapping (a parsed TOML top-level table).

    Relative ``csv_path``, ``audit_log_path``, ``match_model_path``, ``witness_path``,
    ``notify_api_key_file`` and ``ca_file`` are taken relative to ``base_dir``.
    """
    hints = _field_types()
    unknown = sorted(set(data) - set(hints))
    if unknown:
        raise SettingsError(f"{unknown[0]}: unknown setting")
    values: dict[str, Any] = {}
    for f in dataclasses.fields(KitSettings):
        if f.name not in data:
            if f.default is dataclasses.MISSING:
                raise SettingsError(f"{f.name}: missing")
            continue
        values[f.name] = _check_type(f.name, data[f.name], hints[f.name])
    env = os.environ if environ is None else environ
    for name, variable in ENV_FALLBACKS.items():
        if name not in values and env.get(variable):
            values[name] = env[variable]
    if base_dir is not None:
        for name in ("csv_path", "audit_log_path", "match_model_path", "witness_path",
                     "notify_api_key_file", "ca_file"):
            if values.get(name) and not Path(values[name]).is_absolute():
                values[name] = str(base_dir / values[name])
    settings = KitSettings(**values)
    if (settings.notify_via == "govuk_notify" and not settings.notify_api_key_file
            and not env.get("KIT_NOTIFY_API_KEY")
            and (settings.notify != "off" or settings.admin_email)):
        raise SettingsError("notify_api_key_file: required when notify_via is govuk_notify "
                            "(or set KIT_NOTIFY_API_KEY)")
    return settings


def load_settings(path: str | Path) -> KitSettings:
    """Read a kit's TOML settings file; raises :class:`SettingsError` naming the bad key."""
    p = Path(path)
    try:
        with p.open("rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError as e:
        raise SettingsError(f"settings file not found: {p}") from e
    except tomllib.TOMLDecodeError as e:
        raise SettingsError(f"{p}: not valid TOML: {e}") from e
    return settings_from_mapping(data, base_dir=p.resolve().parent)
