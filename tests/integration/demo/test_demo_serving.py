"""Serving a WSGI app on loopback in a thread (``federator.demo.serving``): once
``stop`` returns, the serving thread has ended and the port refuses connections."""

from __future__ import annotations

import socket
from typing import Any

import pytest
import requests

from federator.demo.serving import bind

pytestmark = pytest.mark.integration


def hello(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello"]


def test_after_stop_the_thread_has_ended_and_the_port_refuses_connections() -> None:
    served = bind(0).start(hello)
    assert requests.get(served.url, timeout=10).text == "hello"
    assert served.thread is not None and served.thread.is_alive()
    served.stop()
    assert not served.thread.is_alive()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", served.port), timeout=5).close()


def test_the_port_is_bound_before_start_and_answers_503_until_an_app_is_attached() -> None:
    served = bind(0).start()
    try:
        response = requests.get(served.url, timeout=10)
        assert response.status_code == 503 and response.json() == {"status": "starting"}
    finally:
        served.stop()
