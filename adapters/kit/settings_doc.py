"""``docs/kit-settings.md``, written from ``KitSettings`` itself (issue 22).

The names, types, defaults and which are required come from the dataclass; each
field's one line for the authority's operator is in ``DESCRIPTIONS`` below, and
the environment variables from ``settings.ENV_FALLBACKS``. Pure: ``render()``
returns the page; ``federator-adapter settings-docs --output docs/kit-settings.md``
writes it, and a test checks that the committed file is what ``render()`` makes
now, that every field has a description, and that every environment variable the
kit reads is listed.
"""

from __future__ import annotations

import dataclasses
import types
from pathlib import Path
from typing import Any

from adapters.kit.settings import (
    ENV_FALLBACKS,
    MOVED_HOUSE_MODES,
    NOTIFY_MODES,
    SOURCES,
    KitSettings,
    _field_types,
)

DOC = Path(__file__).resolve().parent.parent.parent / "docs" / "kit-settings.md"


def _choices(values: tuple[str, ...]) -> str:
    return " or ".join(f"`{v}`" for v in values)


#: One line per ``KitSettings`` field, for the authority that runs the kit.
DESCRIPTIONS: dict[str, str] = {
    "authority_id": "This authority's id in the broker's registry: the `aud` every "
    "request's token must name.",
    "name": "The authority's name, in the notifications the kit sends and its start-up line.",
    "jwks_url": "The broker's public keys (`/.well-known/jwks.json`); https only "
    "(http only to a loopback address, for tests and the demo), no user name or "
    "password in it.",
    "broker_issuer": "The broker's id (its `FEDERATOR_BROKER_ID`): a token with any other "
    "`iss` is refused (401), even when signed by a key at `jwks_url`.",
    "source": f"Where the records are: {_choices(SOURCES)}.",
    "csv_path": "The CSV of involvements, columns as `config/kit-template.csv`; "
    "re-read when it changes. Required when `source` is `csv`.",
    "sql_url": "SQLAlchemy URL of the authority's database. Required when `source` is "
    "`sql`.",
    "sql_query": "The query run on every lookup, returning the CSV's columns (quote "
    "`\"from\"` and `\"to\"`). Required when `source` is `sql`.",
    "redis_url": "Redis for the replay guard (`jti`), so a request replayed to another "
    "host or process is refused; without it the guard holds within one process.",
    "match_threshold": "P(this record is the child) at which a record is a `match` "
    "(strictly between 0 and 1).",
    "possible_threshold": "P at which a record is a possible match (`no_match` with the "
    "\"please call us\" notice); not above `match_threshold`.",
    "moved_house": f"A postcode that agrees in nothing: {_choices(MOVED_HOUSE_MODES)} "
    "(see adapters/kit/README.md, \"A child who moved house\").",
    "match_model_path": "A JSON file of m/u values written by `federator-adapter "
    "estimate`; the documented defaults when unset.",
    "record_ref_key": "The key of `record_ref` (HMAC-SHA256 of the record's `child_ref`), "
    "at least 32 characters. Required unless `jwks_url` is on a loopback address.",
    "simulate_delay_ms": "Demo fault switch: answer this many milliseconds later. Leave "
    "at 0.",
    "max_body_bytes": "The largest request body accepted; larger is refused (413) before "
    "it is read.",
    "audit_log_path": "JSON-lines log of the requests received (who asked, basis type, "
    "outcome; no child details).",
    "notify": f"Telling the child's worker when the child is found: {_choices(NOTIFY_MODES)}.",
    "smtp_url": "The mail server: `smtp://[user:password@]host:port` (`?starttls=true` to "
    "upgrade) or `smtps://`. Required when `notify` is on or `admin_email` is set.",
    "team_mailbox": "Where notifications go when the child's record names no "
    "`worker_email`.",
    "notify_from": "The sender of notifications.",
    "notify_digest_s": "With `notify = \"digest\"`: seconds between digests to one "
    "recipient.",
    "notify_queue": "Notifications waiting to be sent at most; one that does not fit is "
    "dropped and logged.",
    "witness_path": "A JSON file holding the broker's latest signed audit checkpoint as "
    "this kit witnesses it (docs/protocol.md, \"Witnessed checkpoints\").",
    "witness_proof_url": "Where the broker's consistency proofs are read (https; http "
    "only to loopback).",
    "admin_email": "Who is e-mailed (through `smtp_url`) when the broker's trail stops "
    "extending the checkpoint the kit holds.",
    "notify_via": "How the kit's e-mails leave it: `smtp` (`smtp_url`) or `govuk_notify` "
    "(GOV.UK Notify's API; docs/kit-notify.md).",
    "notify_template_id": "With `notify_via = \"govuk_notify\"`: the Notify e-mail "
    "template's id (a UUID); its subject is `((subject))`, its body `((body))`.",
    "notify_api_key_file": "A file holding the Notify API key (its first line); a secret, "
    "never logged.",
    "notify_base_url": "Notify's API address; another only for tests or Notify's own "
    "other environments (https; http only to loopback).",
    "ca_file": "A PEM file of the certificate authorities trusted for the broker's https "
    "(its keys and proofs), e.g. an internal CA.",
    "otlp_endpoint": "OpenTelemetry: send traces (a server span per lookup, continuing "
    "the broker's `traceparent`; docs/tracing.md) by OTLP/HTTP to this collector.",
}

#: Variables the kit reads that are not settings read from the file.
OTHER_VARIABLES: dict[str, str] = {
    "KIT_NOTIFY_API_KEY": "the GOV.UK Notify API key, when `notify_api_key_file` is unset",
    "OTEL_SERVICE_NAME": "the service name on the kit's spans (default `federator-kit`)",
    "OTEL_SDK_DISABLED": "`true`: no tracing, whatever `otlp_endpoint` says",
}

#: What leaving an optional setting unset means, where "none" would not say.
UNSET: dict[str, str] = {
    "redis_url": "none: replays refused within one process only",
    "record_ref_key": "`KIT_RECORD_REF_KEY`, else derived from `authority_id` with a "
    "warning (loopback brokers only)",
    "smtp_url": "`KIT_SMTP_URL`, else none",
    "audit_log_path": "none: no request log",
    "witness_path": "none: the checkpoint is held in memory",
    "witness_proof_url": "beside `jwks_url` (`/api/v1/transparency/consistency`)",
    "match_model_path": "none: the documented m/u defaults",
    "team_mailbox": "none",
    "admin_email": "none: nobody is told",
    "notify_template_id": "none (required with `govuk_notify`)",
    "notify_api_key_file": "`KIT_NOTIFY_API_KEY`, else none (one is required with "
    "`govuk_notify`)",
    "otlp_endpoint": "`OTEL_EXPORTER_OTLP_ENDPOINT`, else none: no tracing",
    "ca_file": "none: the public CAs (certifi's)",
}

INTRO = """\
# Adapter kit settings

<!-- Generated from adapters/kit/settings.py (KitSettings) and the descriptions in
     adapters/kit/settings_doc.py by
     `federator-adapter settings-docs --output docs/kit-settings.md`: edit those. -->

The kit reads one TOML file (`federator-adapter serve --config kit.toml`; an
annotated example is `adapters/kit/kit.example.toml`). Relative paths are taken
from the file's folder. A missing required setting, an unknown key or a wrong
value stops start-up with a message naming the setting (`broker_issuer:
missing`). Running the kit: [docs/kit.md](kit.md).
"""


def _kind(annotation: Any) -> str:
    base = annotation
    if isinstance(annotation, types.UnionType):
        base = next(a for a in annotation.__args__ if a is not type(None))
    return {str: "text", int: "whole number", float: "number", bool: "true or false"}.get(
        base, getattr(base, "__name__", str(base)))


def default(f: dataclasses.Field[Any]) -> str:
    if f.default is dataclasses.MISSING:
        return "**required**"
    if f.name in UNSET:
        return UNSET[f.name]
    if f.default is None:
        return "none"
    return f"`{f.default}`"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def render() -> str:
    hints = _field_types()
    rows = [f"| `{f.name}` | {_cell(DESCRIPTIONS[f.name])} | {_kind(hints[f.name])} | "
            f"{_cell(default(f))} |" for f in dataclasses.fields(KitSettings)]
    table = "\n".join(["| setting | meaning | value | default |", "|---|---|---|---|", *rows])
    env_rows = [f"| `{variable}` | `{name}`, when the file has none |"
                for name, variable in ENV_FALLBACKS.items()]
    env_rows += [f"| `{variable}` | {_cell(meaning)} |"
                 for variable, meaning in OTHER_VARIABLES.items()]
    env = "\n".join(["| variable | read as |", "|---|---|", *env_rows])
    return (f"{INTRO}\n{table}\n\n## Environment variables\n\nThe kit reads only these: "
            f"the first only when the file does not set the setting (so a secret can stay "
            f"out of the file):\n\n{env}\n")
