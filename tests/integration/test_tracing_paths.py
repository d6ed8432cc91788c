"""Trace context on the paths the federation test does not take: the threaded
client (``OutboundClient``, as FHIR and plug-ins use it) through the fan-out to
a real kit, and whatever ``traceparent`` a caller sends the kit (forged,
malformed, oversized, with a ``tracestate`` of free text)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from support import kit_notify
from support.kit_notify import AMARA, AUTHORITY, ISSUER

from adapters.kit.app import create_kit_app
from adapters.kit.settings import KitSettings
from adapters.lookup_v1 import LookupV1Client
from adapters.protocol import encode_body, sign_request
from adapters.tracing import OFF, make_tracing, note
from federator.demo.serving import ServedApp, bind
from federator.lookup.fanout import Calls, FanOut
from federator.lookup.routing import Endpoint
from federator.lookup.tracing import lookup_span

pytestmark = pytest.mark.integration

csv_path = kit_notify.csv_path
jwks = kit_notify.jwks
key = kit_notify.key


@pytest.fixture
def kit(jwks: str, csv_path: Path) -> Iterator[tuple[ServedApp, InMemorySpanExporter]]:
    memory = InMemorySpanExporter()
    tracing = make_tracing("federator-kit", exporters=[memory])
    app = create_kit_app(KitSettings(authority_id=AUTHORITY, name="Traced CS", jwks_url=jwks,
                                     broker_issuer=ISSUER, csv_path=str(csv_path)),
                         tracing=tracing)
    served = bind(0).start(app)
    yield served, memory
    served.stop()
    tracing.shutdown()


def wire(lookup_id: str | None = None) -> dict[str, Any]:
    return {"lookup_id": lookup_id or "01J" + uuid.uuid4().hex[:20].upper(), "child": AMARA,
            "basis": {"type": "statutory", "power": "children-act-1989-s47",
                      "reference": "S47-REF-9"},
            "purpose": "Section 47 enquiry", "include_past": True,
            "requester": {"id": "user-1", "name": "Pat Asker", "role": "Health visitor",
                          "organisation": "Neighbouring Trust",
                          "email": "pat.asker@example.nhs.uk"}}


def test_the_threaded_client_sends_the_call_span_and_the_kit_continues_it(kit, key) -> None:
    served, kit_spans = kit
    memory = InMemorySpanExporter()
    tracing = make_tracing("federator-broker", exporters=[memory])
    fanout = FanOut(2, tracing=tracing)
    client = LookupV1Client(sign=lambda body, aud: sign_request(body, key, issuer=ISSUER,
                                                                audience=aud))
    endpoint = Endpoint(AUTHORITY, "Traced CS", "T", ("T",), "federator-lookup/1",
                        served.url, 3000, "", "active")
    payload = wire()
    from adapters.base import Target
    ask = lambda e, d: client.lookup(Target(e.id, e.url, e.timeout_ms), payload,  # noqa: E731
                                     deadline=d)
    span = lookup_span(tracing, payload["lookup_id"], 1, 3000)
    try:
        (outcome,) = fanout.run([endpoint], Calls(ask=ask), deadline=time.monotonic() + 5,
                                parent=span)
    finally:
        span.end()
        fanout.shutdown()
    assert outcome.status == "match"
    (call,) = [s for s in memory.get_finished_spans() if s.name == "federator.authority_call"]
    (server,) = kit_spans.get_finished_spans()
    assert call.parent.span_id == span.context.span_id
    assert server.parent.span_id == call.context.span_id
    assert server.context.trace_id == span.context.trace_id
    assert call.attributes["http.response.status_code"] == 200


FOREIGN = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


@pytest.mark.parametrize("traceparent, continued", [
    (FOREIGN, True),
    ("garbage", False),
    ("00-00000000000000000000000000000000-b7ad6b7169203331-01", False),  # all-zero trace id
    ("ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", False),  # version ff: invalid
    ("00-" + "a" * 5000, False),
    ("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\u00e9", False),
])
def test_any_traceparent_leaves_the_answer_as_it_was(kit, key, traceparent, continued) -> None:
    served, kit_spans = kit
    body = encode_body(wire())
    token = sign_request(body, key, issuer=ISSUER, audience=AUTHORITY)
    answer = requests.post(f"{served.url}/lookup", data=body, timeout=10, headers={
        "Authorization": f"Bearer {token}", "Content-Type": "application/json",
        "traceparent": traceparent.encode("utf-8").decode("latin-1"),
        "tracestate": "child=Amara Okafor"})
    assert answer.status_code == 200 and answer.json()["status"] == "match"
    (server,) = kit_spans.get_finished_spans()
    if continued:
        assert f"{server.context.trace_id:032x}" == FOREIGN.split("-")[1]
        assert f"{server.parent.span_id:016x}" == FOREIGN.split("-")[2]
    else:
        assert server.parent is None  # a new trace
    assert "Amara" not in server.to_json()  # tracestate is never read


def test_an_unsigned_request_with_a_traceparent_is_refused_as_ever(kit) -> None:
    served, kit_spans = kit
    answer = requests.post(f"{served.url}/lookup", data=encode_body(wire()), timeout=10,
                           headers={"traceparent": FOREIGN,
                                    "Content-Type": "application/json"})
    assert answer.status_code == 401
    (server,) = kit_spans.get_finished_spans()
    assert server.attributes["http.response.status_code"] == 401
    assert "federator.lookup_id" not in server.attributes


def test_spans_refuse_an_attribute_not_on_the_list_and_tracing_is_off_by_default() -> None:
    memory = InMemorySpanExporter()
    tracing = make_tracing("t", exporters=[memory])
    span = tracing.tracer.start_span("x")
    with pytest.raises(ValueError, match="'given_name' is not one spans may hold"):
        note(span, given_name="Amara")
    span.end()
    assert make_tracing("t") is OFF and not OFF.enabled
    assert make_tracing("t", endpoint="http://127.0.0.1:4318",
                        environ={"OTEL_SDK_DISABLED": "true"}) is OFF


def test_the_kit_reads_its_otlp_endpoint_or_the_standard_variable() -> None:
    from adapters.kit.settings import SettingsError, settings_from_mapping

    base = {"authority_id": "a", "name": "A", "jwks_url": "http://127.0.0.1:1/jwks",
            "broker_issuer": "b", "csv_path": "kit.csv"}
    assert settings_from_mapping(base, environ={}).otlp_endpoint is None
    standard = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}
    assert settings_from_mapping(base, environ=standard).otlp_endpoint == "http://collector:4318"
    own = {**base, "otlp_endpoint": "https://traces.example:4318"}
    assert settings_from_mapping(own, environ=standard).otlp_endpoint == \
        "https://traces.example:4318"
    with pytest.raises(SettingsError, match="otlp_endpoint: must be an http"):
        settings_from_mapping({**base, "otlp_endpoint": "collector:4318"}, environ={})


def test_stopping_with_an_unreachable_collector_waits_only_so_long() -> None:
    import socket

    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nothing listens there: every export is refused and retried
    tracing = make_tracing("t", endpoint=f"http://127.0.0.1:{port}", environ={})
    for _ in range(600):
        tracing.tracer.start_span("x").end()
    started = time.monotonic()
    tracing.shutdown(timeout_s=0.5)
    assert time.monotonic() - started < 2
