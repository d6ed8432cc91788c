"""OpenTelemetry across the real parts: a broker and the demo's kits over HTTP on
loopback, every span collected twice (the SDK's in-memory exporter, and a real
OTLP/HTTP receiver decoding the protobuf export with opentelemetry-proto), the
structure checked (broker lookup span -> authority call spans -> kit server
span, one trace) and every exported text scanned for the child's identity, the
purpose and the practitioner."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from support.log_capture import identity_strings, leaks
from support.otlp_receiver import OtlpReceiver, ReceivedSpan

from adapters.tracing import ATTRIBUTES
from federator.config import Settings
from federator.demo.federation import Federation, start_federation
from federator.demo.personas import PERSONAS
from federator.demo.world import Child

pytestmark = pytest.mark.integration

PURPOSE = "Assessment under section 17: worried about Amara's nursery attendance"


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    r = OtlpReceiver()
    yield r
    r.stop()


@pytest.fixture
def traced(tmp_path: Path, receiver: OtlpReceiver, monkeypatch: pytest.MonkeyPatch
           ) -> Iterator[tuple[Federation, InMemorySpanExporter]]:
    # the kits read the standard variable, the broker its declared setting
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.url)
    fed = start_federation(tmp_path / "demo", authorities=4, notify="off", base=Settings(
        deadline_default_ms=2500, otel_exporter_otlp_endpoint=receiver.url))
    memory = InMemorySpanExporter()
    for provider in providers(fed):
        provider.add_span_processor(SimpleSpanProcessor(memory))
    yield fed, memory
    fed.stop()


def providers(fed: Federation) -> list[Any]:
    kits = [served.server.app.extensions["federator_kit"]["tracing"] for served in
            fed.kit_threads]
    return [t.provider for t in (fed.app.extensions["federator"].fanout.tracing, *kits)]


def flush(fed: Federation) -> None:
    for provider in providers(fed):
        assert provider.force_flush(10_000)


def child_known_to_two(fed: Federation) -> Child:
    live = {a.id for a in fed.world.authorities if a.behaviour == "normal"}
    return next(c for c in fed.world.children
                if len(set(c.known_to) & live) >= 2 and not c.shielded)


def lookup(fed: Federation, child: Child) -> dict[str, Any]:
    body = {"child": {"nhs_number": child.nhs_number, "given_name": child.given_name,
                      "family_name": child.family_name,
                      "date_of_birth": child.date_of_birth.isoformat(),
                      "postcodes": list(child.postcodes)},
            "purpose": PURPOSE, "include_past": True,
            "basis": {"type": "statutory", "power": "children-act-1989-s47",
                      "reference": "S47-TRACE-77"}}
    answer = requests.post(f"{fed.broker.url}/api/v1/lookups", json=body, timeout=30,
                           headers={"Authorization": f"Bearer {fed.token()}"})
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def never_in_spans(child: Child) -> set[str]:
    practitioner = PERSONAS["practitioner"]
    return identity_strings([{"nhs_number": child.nhs_number,
                              "given_name": child.given_name,
                              "family_name": child.family_name,
                              "date_of_birth": child.date_of_birth.isoformat()}]) | {
        *child.postcodes, *(p.replace(" ", "") for p in child.postcodes), PURPOSE,
        "nursery", "S47-TRACE-77", practitioner.name, practitioner.email}


def test_one_trace_from_the_lookup_through_each_call_to_each_kit_with_nothing_personal(
        traced, receiver) -> None:
    fed, memory = traced
    child = child_known_to_two(fed)
    answer = lookup(fed, child)
    flush(fed)
    spans = memory.get_finished_spans()

    (root,) = [s for s in spans if s.name == "federator.lookup"]
    assert root.attributes["federator.lookup_id"] == answer["lookup_id"]
    assert root.parent is None
    trace_id = root.context.trace_id
    calls = [s for s in spans if s.name == "federator.authority_call"]
    asked = {a["id"]: a["outcome"] for a in answer["authorities"]
             if a["outcome"] != "not_consulted"}
    assert {c.attributes["federator.authority_id"] for c in calls} == set(asked)
    for call in calls:
        assert call.kind == SpanKind.CLIENT and call.context.trace_id == trace_id
        assert call.parent.span_id == root.context.span_id
        assert call.attributes["federator.outcome"] == asked[
            call.attributes["federator.authority_id"]]
        assert call.attributes["server.address"] == "127.0.0.1"
    answered = [c for c in calls if c.attributes["federator.outcome"] in ("match", "no_match")]
    assert sum(c.attributes["federator.outcome"] == "match" for c in answered) >= 2
    kits = [s for s in spans if s.name == "federator.kit.lookup"]
    for call in answered:
        assert call.attributes["http.response.status_code"] == 200
        (kit,) = [k for k in kits if k.parent is not None
                  and k.parent.span_id == call.context.span_id]
        assert kit.kind == SpanKind.SERVER and kit.context.trace_id == trace_id
        assert kit.attributes["federator.authority_id"] == \
            call.attributes["federator.authority_id"]
        assert kit.attributes["federator.lookup_id"] == answer["lookup_id"]
        assert kit.attributes["federator.outcome"] == call.attributes["federator.outcome"]
        assert kit.resource.attributes["service.name"] == "federator-kit"
    assert root.resource.attributes["service.name"] == "federator-broker"

    # the same spans reached the OTLP receiver, protobuf over HTTP
    received = {(r.trace_id, r.span_id): r for r in receiver.spans}
    for span in spans:
        got: ReceivedSpan = received[(f"{span.context.trace_id:032x}",
                                      f"{span.context.span_id:016x}")]
        assert got.name == span.name and got.service == span.resource.attributes[
            "service.name"]
        assert got.parent_span_id == (f"{span.parent.span_id:016x}" if span.parent else "")

    # nothing personal anywhere, and only the attributes spans may hold
    texts = [t for r in receiver.spans for t in r.texts]
    texts += [s.to_json() for s in spans]
    assert texts and not leaks(texts, never_in_spans(child))
    for span in spans:
        assert set(span.attributes) <= ATTRIBUTES, span.name


def test_tracing_off_sends_no_traceparent_and_makes_no_spans(tmp_path) -> None:
    fed = start_federation(tmp_path / "demo", authorities=4, notify="off",
                           base=Settings(deadline_default_ms=2500))
    try:
        assert not fed.app.extensions["federator"].fanout.tracing.enabled
        seen: list[tuple[str, str | None]] = []
        for served in fed.kit_threads:
            served.server.app = spying(served.server.app, seen)
        lookup(fed, child_known_to_two(fed))
        assert not any(served.server.app.app.extensions["federator_kit"]["tracing"].enabled
                       for served in fed.kit_threads)
    finally:
        for served in fed.kit_threads:
            served.server.app = served.server.app.app
        fed.stop()
    posts = [value for method, value in seen if method == "POST"]
    assert len(posts) >= 2 and set(posts) == {None}


class spying:
    def __init__(self, app: Any, seen: list[Any]) -> None:
        self.app, self.seen = app, seen

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        self.seen.append((environ["REQUEST_METHOD"], environ.get("HTTP_TRACEPARENT")))
        return self.app(environ, start_response)
