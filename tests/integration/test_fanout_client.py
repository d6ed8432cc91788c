"""The outbound client itself over real sockets: the deadline holds while bytes
drip, answers are capped, and the resolver hook decides where each new
connection goes while the Host header keeps the registered name."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from support.fault_server import FaultServer

from adapters.base import AdapterError, AdapterTimeout, OutboundClient, Target

pytestmark = pytest.mark.integration


@pytest.fixture
def server() -> Iterator[FaultServer]:
    served = FaultServer("ok")
    yield served
    served.stop()


def target(url: str) -> Target:
    return Target(id="t", url=url, timeout_ms=10000)


def post(client: OutboundClient, url: str, seconds: float) -> float:
    started = time.monotonic()
    client.post(target(url), "/lookup", b'{"lookup_id": "L1"}', {},
                deadline=started + seconds)
    return time.monotonic() - started


def test_a_dripping_answer_is_cut_off_at_the_deadline(server: FaultServer) -> None:
    server.fault = "drip"  # one byte a second, ~200 bytes: 3 minutes if read to the end
    client = OutboundClient()
    started = time.monotonic()
    with pytest.raises(AdapterTimeout):
        post(client, server.url, 1.5)
    assert time.monotonic() - started < 5, "the worker was held past the deadline"


def test_a_hanging_authority_times_out_at_the_deadline(server: FaultServer) -> None:
    server.fault = "hang"
    started = time.monotonic()
    with pytest.raises(AdapterTimeout):
        post(OutboundClient(), server.url, 1.0)
    assert time.monotonic() - started < 5


def test_an_answer_over_the_cap_is_refused_while_streaming(server: FaultServer) -> None:
    server.fault = "huge"
    with pytest.raises(AdapterError, match="larger than 65536"):
        post(OutboundClient(max_answer_bytes=65536), server.url, 10)


def test_resolver_chooses_the_address_and_the_name_stays_in_host(server: FaultServer) -> None:
    asked: list[tuple[str, int]] = []

    def resolve(host: str, port: int) -> str:
        asked.append((host, port))
        return "127.0.0.1"

    client = OutboundClient(resolve=resolve)
    url = f"http://adapter.federator.test:{server.port}"
    post(client, url, 5)
    post(client, url, 5)
    assert asked == [("adapter.federator.test", server.port)]  # once per new connection
    assert server.hosts == [f"adapter.federator.test:{server.port}"] * 2
    client.close()
    post(client, url, 5)
    assert len(asked) == 2  # a new connection is checked again


def test_a_refused_address_is_that_authority_error(server: FaultServer) -> None:
    def refuse(host: str, port: int) -> str:
        raise ValueError(f"{host} resolves to 169.254.169.254")

    with pytest.raises(AdapterError, match="address not allowed"):
        post(OutboundClient(resolve=refuse), server.url, 5)
    assert server.requests == 0
