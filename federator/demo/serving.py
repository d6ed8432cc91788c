"""Serving WSGI apps on loopback in threads (demo and tests)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from werkzeug.serving import BaseWSGIServer, make_server

#: How often a serving thread looks for a shutdown request, so ``stop`` returns this
#: soon after asking. socketserver's default, 0.5 s, cost up to half a second per
#: server, one after another: about a second or more for each federation's teardown.
POLL_S = 0.05
#: The most ``stop`` waits for the serving thread to end once asked.
STOP_TIMEOUT_S = 5.0


def _placeholder(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    start_response("503 Service Unavailable", [("Content-Type", "application/json")])
    return [b'{"status": "starting"}']


@dataclass
class ServedApp:
    """A bound socket; the app may be attached after the port is known."""

    server: BaseWSGIServer
    thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self.server.server_port)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, app: Any | None = None) -> ServedApp:
        if app is not None:
            self.server.app = app
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True,
                                       kwargs={"poll_interval": POLL_S},
                                       name=f"serve-{self.port}")
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        if self.thread is not None:
            self.thread.join(timeout=STOP_TIMEOUT_S)


def bind(port: int = 0, host: str = "127.0.0.1", app: Any | None = None) -> ServedApp:
    """Bind now (port 0 picks a free one); call ``start`` to serve."""
    server = make_server(host, port, app or _placeholder, threaded=True)
    server.daemon_threads = True
    return ServedApp(server)
