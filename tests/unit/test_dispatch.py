"""Adapter dispatch: the client per protocol, credentials only where needed, the
event loop when the client has ``alookup``, the request id where it is taken."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from adapters.base import AdapterError, Target
from federator.logs import REQUEST_ID
from federator.lookup.dispatch import Dispatcher
from federator.lookup.routing import Endpoint


def endpoint(protocol: str) -> Endpoint:
    return Endpoint(id="leeds-cs", name="Leeds", code="E0", coverage=(), protocol=protocol,
                    url="https://leeds.example/f", timeout_ms=3000, contact="c",
                    status="active")


class ThreadClient:
    needs_credentials = True

    def __init__(self) -> None:
        self.targets: list[Target] = []
        self.ids: list[str | None] = []

    def lookup(self, target: Target, payload: Any, *, deadline: float,
               request_id: str | None = None) -> dict[str, Any]:
        self.targets.append(target)
        self.ids.append(request_id)
        return {"status": "no_match", "payload": payload}


class LoopClient:
    def __init__(self) -> None:
        self.closed = False

    def lookup(self, target: Target, payload: Any, *, deadline: float) -> dict[str, Any]:
        raise AssertionError("an event-loop client is asked on the loop")

    async def alookup(self, target: Target, payload: Any, *, deadline: float
                      ) -> dict[str, Any]:
        return {"status": "match", "credentials": dict(target.credentials)}

    async def aclose(self) -> None:
        self.closed = True


@pytest.fixture
def clients() -> dict[str, Any]:
    return {"fhir-r4": ThreadClient(), "federator-lookup/1": LoopClient()}


def test_a_client_that_needs_credentials_gets_them_and_no_other(clients: Any) -> None:
    asked: list[str] = []

    def credentials(endpoint_id: str) -> dict[str, Any]:
        asked.append(endpoint_id)
        return {"client_secret": "s"}

    dispatcher = Dispatcher(clients, credentials)
    dispatcher.ask(endpoint("fhir-r4"), {"q": 1}, 0.0)
    assert clients["fhir-r4"].targets[0].credentials == {"client_secret": "s"}
    answer = asyncio.run(dispatcher.aask(endpoint("federator-lookup/1"), {}, 0.0))
    assert answer["credentials"] == {}
    assert asked == ["leeds-cs"]


def test_the_loop_is_used_only_by_clients_that_have_alookup(clients: Any) -> None:
    dispatcher = Dispatcher(clients, lambda _: {})
    assert dispatcher.aask(endpoint("fhir-r4"), {}, 0.0) is None
    call = dispatcher.aask(endpoint("federator-lookup/1"), {}, 0.0)
    assert asyncio.iscoroutine(call)
    assert asyncio.run(call)["status"] == "match"


def test_a_protocol_not_installed_is_that_authoritys_error(clients: Any) -> None:
    dispatcher = Dispatcher(clients, lambda _: {})
    with pytest.raises(AdapterError, match="protocol carrier-pigeon is not installed"):
        dispatcher.ask(endpoint("carrier-pigeon"), {}, 0.0)
    assert dispatcher.aask(endpoint("carrier-pigeon"), {}, 0.0) is None


def test_calls_send_every_authority_the_same_payload_with_the_request_id(
        clients: Any) -> None:
    dispatcher = Dispatcher(clients, lambda _: {})
    payload = {"lookup_id": "L1"}
    token = REQUEST_ID.set("req-123")
    try:
        calls = dispatcher.calls(payload)
        assert calls.ask(endpoint("fhir-r4"), 0.0)["payload"] is payload
    finally:
        REQUEST_ID.reset(token)
    assert clients["fhir-r4"].ids == ["req-123"]
    assert calls.aask is not None
    assert asyncio.run(calls.aask(endpoint("federator-lookup/1"), 0.0))["status"] == "match"


def test_closers_are_the_loop_clients_connections(clients: Any) -> None:
    [close] = Dispatcher(clients, lambda _: {}).closers()
    asyncio.run(close())
    assert clients["federator-lookup/1"].closed


def test_the_target_carries_the_endpoints_name_and_registered_policy() -> None:
    import dataclasses

    client = ThreadClient()
    dispatcher = Dispatcher({"fhir-r4": client}, lambda _: {})
    with_policy = dataclasses.replace(endpoint("fhir-r4"),
                                      policy='{"restricted_route": "the duty desk"}')
    dispatcher.ask(with_policy, {"lookup_id": "L"}, deadline=10**9)
    dispatcher.ask(endpoint("fhir-r4"), {"lookup_id": "L"}, deadline=10**9)
    assert [(t.name, dict(t.policy)) for t in client.targets] == [
        ("Leeds", {"restricted_route": "the duty desk"}), ("Leeds", {})]
