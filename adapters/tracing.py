"""OpenTelemetry traces for the broker and the kit: off unless configured.

One :class:`Tracing` per app (the broker, each kit), each with its own SDK
``TracerProvider`` when an OTLP endpoint (or, in tests, an exporter) is given,
and nothing at all otherwise: the API's no-op tracer, no SDK imported, no
spans made, no ``traceparent`` sent (docs/tracing.md).

Spans hold only what :data:`ATTRIBUTES` names, set through :func:`note`: ids
the broker made (lookup id, authority id), outcomes, counts, latencies, HTTP
statuses and the endpoint's host. Never a child's details, the purpose, a
justification or a practitioner: a key outside the list raises ``ValueError``.
Exceptions are never recorded on spans (their messages may quote a request).

The W3C trace context travels in one header, ``traceparent``, outside the
request's signature like ``X-Request-Id`` (docs/protocol.md, "Trace context").
``tracestate`` is neither sent nor read: it is free text a sender chooses. A
malformed ``traceparent`` is ignored (the kit's span starts a new trace).
"""

from __future__ import annotations

import atexit
import os
import threading
from collections.abc import Iterator, Mapping, MutableMapping, Sequence
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

TRACEPARENT = "traceparent"
#: version 00 is 55 characters; a later version may append fields
MAX_TRACEPARENT = 256
PROPAGATOR = TraceContextTextMapPropagator()

#: Every attribute a span may hold, by the keyword :func:`note` takes for it.
NAMES = {
    "lookup_id": "federator.lookup_id", "authority_id": "federator.authority_id",
    "protocol": "federator.protocol", "outcome": "federator.outcome",
    "latency_ms": "federator.latency_ms", "sent": "federator.sent",
    "authorities": "federator.authorities", "complete": "federator.complete",
    "deadline_ms": "federator.deadline_ms", "professionals": "federator.professionals",
    "http_status": "http.response.status_code", "host": "server.address",
    "port": "server.port",
}
OUTCOMES = ("match", "possible_match", "no_match", "declined", "timeout", "error",
            "unavailable", "not_consulted")
ATTRIBUTES = frozenset({*NAMES.values(), *(f"federator.outcomes.{o}" for o in OUTCOMES)})


class Tracing:
    """A tracer, and whether spans are made at all (``enabled``)."""

    def __init__(self, provider: Any = None) -> None:
        self.provider = provider
        self.enabled = provider is not None
        self.stopped = False
        self.tracer: trace.Tracer = (provider.get_tracer("federator") if provider is not None
                                     else trace.NoOpTracer())

    def flush(self, timeout_ms: int = 5000) -> bool:
        return bool(self.provider.force_flush(timeout_ms)) if self.enabled else True

    def shutdown(self, timeout_s: float = 5.0) -> None:
        """Export what is batched and stop, waiting at most ``timeout_s``: an
        unreachable collector is retried by the exporter for every batch left."""
        if self.enabled and not self.stopped:
            self.stopped = True
            stopping = threading.Thread(target=self.provider.shutdown, daemon=True,
                                        name="otel-shutdown")
            stopping.start()
            stopping.join(timeout_s)


OFF = Tracing()


def traces_url(endpoint: str) -> str:
    """OTLP/HTTP's traces path under a base endpoint, as ``OTEL_EXPORTER_OTLP_ENDPOINT``
    is read (the specification: ``<endpoint>/v1/traces``)."""
    return endpoint.rstrip("/") + "/v1/traces"


def make_tracing(service_name: str, *, endpoint: str | None = None,
                 exporters: Sequence[Any] = (), environ: Mapping[str, str] | None = None
                 ) -> Tracing:
    """Spans exported by OTLP/HTTP (protobuf) to ``endpoint`` and to ``exporters``
    (each span as it ends: tests); :data:`OFF` when neither, or when
    ``OTEL_SDK_DISABLED`` is true. The SDK reads the other standard variables
    itself: ``OTEL_SERVICE_NAME``, ``OTEL_RESOURCE_ATTRIBUTES``,
    ``OTEL_TRACES_SAMPLER``, ``OTEL_EXPORTER_OTLP_HEADERS``, ``..._TIMEOUT``."""
    env = os.environ if environ is None else environ
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return OFF
    if not endpoint and not exporters:
        return OFF
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    named = {} if env.get("OTEL_SERVICE_NAME") else {SERVICE_NAME: service_name}
    # not the SDK's own exit hook: it waits as long as the exporter retries
    provider = TracerProvider(resource=Resource.create(named), shutdown_on_exit=False)
    if endpoint:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        provider.add_span_processor(BatchSpanProcessor(
            OTLPSpanExporter(endpoint=traces_url(endpoint))))
    for exporter in exporters:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing = Tracing(provider)
    atexit.register(tracing.shutdown)
    return tracing


def attributes(**given: Any) -> dict[str, Any]:
    """Span attributes by keyword (:data:`NAMES`); any other keyword raises
    ``ValueError``. ``None`` values are left out."""
    found = {}
    for key, value in given.items():
        name = NAMES.get(key)
        if name is None:
            raise ValueError(f"span attribute {key!r} is not one spans may hold")
        if value is not None:
            found[name] = value
    return found


def note(span: Any, **given: Any) -> None:
    """Set :func:`attributes` on a recording span."""
    if span.is_recording():
        span.set_attributes(attributes(**given))


def note_outcomes(span: Any, statuses: Sequence[str]) -> None:
    """How many authorities answered each outcome."""
    if not span.is_recording():
        return
    for status in set(statuses) & set(OUTCOMES):
        span.set_attribute(f"federator.outcomes.{status}", statuses.count(status))


def endpoint_host(url: str) -> tuple[str | None, int | None]:
    """The host and port of an endpoint URL: never its path or query."""
    try:
        parts = urlsplit(url)
        return parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return None, None


def note_status(status: int) -> None:
    """The HTTP status of the current span's call (the transports call this)."""
    span = trace.get_current_span()
    if span.is_recording():
        span.set_attribute("http.response.status_code", status)


def inject(headers: MutableMapping[str, str]) -> None:
    """Add ``traceparent`` for the current span, when there is one (tracing on)."""
    if trace.get_current_span().get_span_context().is_valid:
        carrier: dict[str, str] = {}
        PROPAGATOR.inject(carrier)
        if TRACEPARENT in carrier:
            headers[TRACEPARENT] = carrier[TRACEPARENT]


def traced(headers: Mapping[str, str]) -> Mapping[str, str]:
    """``headers`` with ``traceparent`` added (a copy) when the current span is
    one; else ``headers`` themselves."""
    if not trace.get_current_span().get_span_context().is_valid:
        return headers
    sent = dict(headers)
    inject(sent)
    return sent


def extract(headers: Mapping[str, str]) -> otel_context.Context:
    """The caller's trace context from ``traceparent`` alone; an empty context
    (a new trace) for a missing, oversized or malformed one."""
    value = headers.get(TRACEPARENT)
    if not value or len(value) > MAX_TRACEPARENT:
        return otel_context.Context()
    return PROPAGATOR.extract({TRACEPARENT: value}, context=otel_context.Context())


@contextmanager
def current(span: Any) -> Iterator[Any]:
    """``span`` as the current span here, without ending it or recording exceptions."""
    token = otel_context.attach(trace.set_span_in_context(span))
    try:
        yield span
    finally:
        otel_context.detach(token)
