"""A failed check says what happened in words, never Python's exception text
(``HTTPConnectionPool(host=…): Max retries exceeded … [Errno 111]``)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest
import requests

from adapters.conformance import plain_error
from adapters.protocol import InvalidAnswer

PYTHON_TEXT = ("HTTPConnectionPool", "Max retries", "Errno", "object at 0x", "Caused by")


@pytest.fixture
def silent_server() -> Iterator[int]:
    """Accepts connections and never answers (or, read over TLS, is not TLS)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    held: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            held.append(conn)
            conn.sendall(b"")  # nothing

    threading.Thread(target=accept, daemon=True).start()
    yield server.getsockname()[1]
    server.close()
    for conn in held:
        conn.close()


def closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def failure(call) -> Exception:
    try:
        call()
    except Exception as e:  # the point: catch what requests raises
        return e
    raise AssertionError("no failure")


def test_real_failures_in_words(silent_server: int) -> None:
    cases = {
        "could not connect: nothing is listening at that address (connection refused)":
            failure(lambda: requests.get(f"http://127.0.0.1:{closed_port()}/health", timeout=2)),
        "no answer in time":
            failure(lambda: requests.get(f"http://127.0.0.1:{silent_server}/health",
                                         timeout=0.3)),
        "the address is not a valid URL": failure(lambda: requests.get("not a url", timeout=2)),
    }
    for words, error in cases.items():
        assert plain_error(error) == words
        assert not [t for t in PYTHON_TEXT if t in plain_error(error)]


@pytest.mark.parametrize(("error", "words"), [
    (requests.exceptions.SSLError("[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed"),
     "the TLS certificate was not accepted (not trusted, expired, or for another name)"),
    (requests.ConnectionError("HTTPSConnectionPool(host='x.invalid', port=443): Max retries "
                              "exceeded (Caused by NameResolutionError(...))"),
     "could not connect: the host name does not resolve"),
    (requests.ConnectionError("('Connection aborted.', RemoteDisconnected('Remote end closed "
                              "connection without response'))"),
     "could not connect: the server closed the connection without answering"),
    (requests.exceptions.ConnectTimeout("timed out"), "could not connect in time"),
    (requests.TooManyRedirects("Exceeded 30 redirects."), "redirected too many times"),
    (requests.ConnectionError("something new"), "could not connect"),
    (InvalidAnswer("the answer's lookup_id is not the request's"),
     "the answer's lookup_id is not the request's"),
])
def test_each_kind_in_words(error: Exception, words: str) -> None:
    assert plain_error(error) == words
