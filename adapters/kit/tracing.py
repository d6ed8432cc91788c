"""The kit's server span for each ``POST /lookup`` (adapters.tracing): a child of
the broker's authority-call span when the request's ``traceparent`` names one,
else the root of a new trace. The view adds the lookup id and the outcome; the
span is made before the request's token is checked, so a forged or malformed
``traceparent`` only places (or fails to place) this span in a trace."""

from __future__ import annotations

from flask import Flask, Response, g, request
from opentelemetry import context as otel_context
from opentelemetry import trace

from adapters.tracing import Tracing, extract, note


def trace_lookups(app: Flask, tracing: Tracing, authority_id: str) -> None:
    """Open a server span around each ``POST /lookup`` of ``app``, current while the
    view runs, ended with the response's status."""

    @app.before_request
    def open_span() -> None:
        if request.method != "POST" or request.path != "/lookup":
            return
        span = tracing.tracer.start_span(
            "federator.kit.lookup", context=extract(request.headers),
            kind=trace.SpanKind.SERVER)
        note(span, authority_id=authority_id)
        g.trace_span = span
        g.trace_token = otel_context.attach(trace.set_span_in_context(span))

    @app.after_request
    def status(response: Response) -> Response:
        span = g.get("trace_span")
        if span is not None:
            note(span, http_status=response.status_code)
            if response.status_code >= 500:
                span.set_status(trace.StatusCode.ERROR)
        return response

    @app.teardown_request
    def close_span(_error: BaseException | None) -> None:
        span = g.pop("trace_span", None)
        token = g.pop("trace_token", None)
        if token is not None:
            otel_context.detach(token)
        if span is not None:
            span.end()
