"""``docs/settings.md``, written from the settings declared on ``Settings``.

Pure: ``render()`` returns the page; ``federator settings docs`` writes it, and
a test checks the committed file is what ``render()`` makes now.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from federator.config import Declaration, declarations

DOC = Path(__file__).resolve().parent.parent / "docs" / "settings.md"

INTRO = """\
# Settings

<!-- Generated from the declarations in federator/config.py by
     `federator settings docs --output docs/settings.md`: edit those, not this file. -->

The broker reads these environment variables once, at start-up. A blank value
counts as unset. Production (the default `FEDERATOR_ENV`) refuses to start
without real secrets (`FEDERATOR_SECRET_KEY`, `FEDERATOR_AUDIT_KEY`), an https
`FEDERATOR_OIDC_ISSUER` and a `FEDERATOR_SIGNING_KEY_FILE`; a wrong value stops
start-up with a message naming the variable.
"""

OUTRO = """\
Serving under gunicorn (`federator serve`, or `gunicorn -c config/gunicorn.conf.py
wsgi:app`) also reads `GUNICORN_BIND`, `GUNICORN_WORKERS`, `GUNICORN_THREADS`,
`GUNICORN_FORWARDED_ALLOW_IPS` and `PROMETHEUS_MULTIPROC_DIR`; their defaults
are in `config/gunicorn.conf.py`.

Tracing (docs/tracing.md), when `FEDERATOR_OTEL_EXPORTER_OTLP_ENDPOINT` or
`OTEL_EXPORTER_OTLP_ENDPOINT` is set, also follows the OpenTelemetry SDK's
standard variables: `OTEL_SERVICE_NAME` (default `federator-broker`),
`OTEL_RESOURCE_ATTRIBUTES`, `OTEL_TRACES_SAMPLER` and `OTEL_TRACES_SAMPLER_ARG`,
`OTEL_EXPORTER_OTLP_HEADERS` (e.g. the collector's credentials),
`OTEL_EXPORTER_OTLP_TIMEOUT`, `OTEL_EXPORTER_OTLP_COMPRESSION`, the
`OTEL_BSP_*` batch settings; `OTEL_SDK_DISABLED=true` turns it off.
"""

_KINDS = {int: "whole number", str: "text", Path: "path", tuple[str, ...]: "comma-separated list"}


def kind(d: Declaration) -> str:
    """What the value is, as an operator reads it."""
    if d.choices:
        return " or ".join(f"`{c}`" for c in d.choices)
    text = _KINDS[d.kind]
    return f"{text}, at least {d.minimum}" if d.minimum is not None else text


def default(d: Declaration) -> str:
    """The value when unset, or what leaving it unset means."""
    if d.unset:
        return f"`{d.fallback}`, else {d.unset}" if d.fallback else d.unset
    value = _shown(d.default)
    if d.fallback:
        return f"`{d.fallback}`, else {value}"
    return value


def _shown(value: Any) -> str:
    if value in (None, "", ()):
        return "none"
    return f"`{value}`"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def render() -> str:
    rows = [f"| `{d.variable}` | {_cell(d.description)} | {_cell(kind(d))} | "
            f"{_cell(default(d))} |" for d in declarations()]
    table = "\n".join(["| variable | meaning | value | default |", "|---|---|---|---|", *rows])
    return f"{INTRO}\n{table}\n\n{OUTRO}"
