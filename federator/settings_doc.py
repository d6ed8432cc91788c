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

#: Variables the broker's processes read that are not ``Settings``: gunicorn's
#: (``config/gunicorn.conf.py``) and prometheus_client's. Name: (meaning, default).
SERVING_VARIABLES: dict[str, tuple[str, str]] = {
    "GUNICORN_BIND": ("The address gunicorn listens on (`federator serve --bind` wins).",
                      "`127.0.0.1:5000`"),
    "GUNICORN_WORKERS": ("Worker processes (`--workers` wins); more than one needs "
                         "`FEDERATOR_REDIS_URL` in production.", "`2`"),
    "GUNICORN_THREADS": ("Threads per worker (gthread).", "`16`"),
    "GUNICORN_FORWARDED_ALLOW_IPS": ("The load balancer's addresses, whose `X-Forwarded-*` "
                                     "headers (client address, `https`) are believed.",
                                     "`127.0.0.1`"),
    "PROMETHEUS_MULTIPROC_DIR": ("Folder where every worker writes its metrics samples, "
                                 "summed by `/metrics`.",
                                 "a fresh temporary folder per server, removed at exit"),
}

#: ``FEDERATOR_*`` variables read only by the tests, benchmarks and scripts.
TEST_VARIABLES: dict[str, tuple[str, str]] = {
    "FEDERATOR_REQUIRE_SERVICES": ("`1`: a missing PostgreSQL, Redis, Chromium, Node.js "
                                   "server or identity provider fails the test instead "
                                   "of skipping it (`.ci/run` sets it).", "unset: skipped"),
    "FEDERATOR_TEST_POSTGRES_URL": ("The PostgreSQL the tests and benchmarks use.",
                                    "`postgresql+psycopg://postgres@127.0.0.1:5432/test`"),
    "FEDERATOR_TEST_REDIS_URL": ("The Redis the tests use (keys under a per-test prefix).",
                                 "`redis://127.0.0.1:6379/15`"),
    "FEDERATOR_CHROMIUM": ("The Chromium the browser tests drive.", "`/usr/bin/chromium`"),
    "FEDERATOR_SCREENSHOTS": ("A folder (from the repository root) where the browser "
                              "tests save their screenshots (`scripts/screenshots`).",
                              "unset: not saved"),
    "FEDERATOR_SCHEMATHESIS_EXAMPLES": ("Examples per API operation in the schemathesis "
                                        "test.", "`25`"),
}


def _section(heading: str, intro: str, variables: dict[str, tuple[str, str]]) -> str:
    rows = [f"| `{name}` | {_cell(meaning)} | {_cell(value)} |"
            for name, (meaning, value) in variables.items()]
    return "\n".join([f"## {heading}", "", intro, "| variable | meaning | default |",
                      "|---|---|---|", *rows])


OUTRO = """\
Serving under gunicorn (`federator serve`, or `gunicorn -c config/gunicorn.conf.py
wsgi:app`) also reads these (defaults in `config/gunicorn.conf.py`):
"""

#: The OpenTelemetry SDK's own variables, followed when tracing is on (docs/tracing.md).
TRACING_VARIABLES: dict[str, tuple[str, str]] = {
    "OTEL_EXPORTER_OTLP_ENDPOINT": ("The collector's OTLP/HTTP address, when "
                                    "`FEDERATOR_OTEL_EXPORTER_OTLP_ENDPOINT` is unset.",
                                    "unset: no tracing"),
    "OTEL_SERVICE_NAME": ("The service name on every span.", "`federator-broker`"),
    "OTEL_RESOURCE_ATTRIBUTES": ("Extra resource attributes (`key=value,...`).", "none"),
    "OTEL_TRACES_SAMPLER": ("The sampler, e.g. `parentbased_traceidratio` (docs/tracing.md "
                            "on the cost at a wide fan-out).", "`parentbased_always_on`"),
    "OTEL_TRACES_SAMPLER_ARG": ("The sampler's argument, e.g. `0.1`.", "none"),
    "OTEL_EXPORTER_OTLP_HEADERS": ("Headers sent to the collector (its credentials).", "none"),
    "OTEL_EXPORTER_OTLP_TIMEOUT": ("The export's time-out.", "the SDK's"),
    "OTEL_EXPORTER_OTLP_COMPRESSION": ("`gzip` to compress exports.", "none"),
    "OTEL_SDK_DISABLED": ("`true` turns tracing off whatever else is set.", "`false`"),
}

TRACING = """\
When tracing is on, the OpenTelemetry SDK also reads these (and its `OTEL_BSP_*`
batch settings):
"""

TESTS = """\
The tests, benchmarks and scripts also read these; the broker never does:
"""


def documented() -> set[str]:
    """Every environment variable these pages document."""
    return ({d.variable for d in declarations()} | set(SERVING_VARIABLES)
            | set(TEST_VARIABLES) | set(TRACING_VARIABLES))


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
    serving = _section("Serving", OUTRO, SERVING_VARIABLES)
    tracing = _section("Tracing", TRACING, TRACING_VARIABLES)
    tests = _section("Tests and benchmarks", TESTS, TEST_VARIABLES)
    return f"{INTRO}\n{table}\n\n{serving}\n\n{tracing}\n\n{tests}\n"
