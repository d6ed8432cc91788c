"""An authority that misbehaves on demand, and how a test federation asks it.

``FaultServer`` is a small adapter server on loopback with a fault switch (``fault``
is read on every request: ``ok``, ``slow:<ms>``, ``declined``, ``hang``, ``drip``,
``close``, ``reset``, ``500``, ``garbage``, ``huge``, ``other_id``, ``unsigned``).
``seed_for`` registers such servers with a demo federation (area ``fault_code(i)``
for the i-th), ``body`` and ``post`` make and send a lookup to its broker.
"""

from __future__ import annotations

import json
import socket
import struct
import threading
from datetime import date, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import requests

from adapters.protocol import PROTOCOL
from federator.config import Settings
from federator.demo.federation import Federation
from federator.demo.files import toml_array_of_tables
from support.budget import UNLIMITED

DEADLINE_MS = 2000
#: How far past its deadline a lookup may return here: scheduling on a shared
#: machine, the audit writes and the HTTP round trip, not the authority.
SLACK_S = 4.0


class FaultServer:
    """An adapter with a fault switch: ``fault`` is read on every request."""

    def __init__(self, fault: str = "ok") -> None:
        self.fault = fault
        self.requests = 0
        self.hosts: list[str] = []
        #: requests being answered now, and the most at once
        self.active = self.peak = 0
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                self._send(200, {"status": "ok", "protocol": PROTOCOL})

            def do_POST(self) -> None:
                outer.requests += 1
                outer.hosts.append(self.headers.get("Host", ""))
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                lookup_id = json.loads(body).get("lookup_id", "")
                with outer.lock:
                    outer.active += 1
                    outer.peak = max(outer.peak, outer.active)
                try:
                    outer.answer(self, outer.fault, lookup_id)
                finally:
                    with outer.lock:
                        outer.active -= 1

            def _send(self, status: int, data: Any, raw: bytes | None = None) -> None:
                payload = raw if raw is not None else json.dumps(data).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.handler = Handler
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def answer(self, h: Any, fault: str, lookup_id: str) -> None:
        match_ = {"lookup_id": lookup_id, "status": "match", "confidence": 1.0,
                  "professionals": [{"name": "Rowan Fault", "role": "Social worker",
                                     "organisation": "Fault Council",
                                     "phone": "0113 000 0001", "current": True}]}
        if fault == "ok":
            h._send(200, match_)
        elif fault.startswith("slow:"):
            self.stopping.wait(int(fault.split(":")[1]) / 1000)
            h._send(200, match_)
        elif fault == "declined":
            h._send(200, {"lookup_id": lookup_id, "status": "declined"})
        elif fault == "hang":
            self.stopping.wait(30)
        elif fault == "drip":
            payload = json.dumps(match_).encode()
            h.send_response(200)
            h.send_header("Content-Length", str(len(payload)))
            h.end_headers()
            for byte in payload:
                if self.stopping.wait(1.0):
                    return
                h.wfile.write(bytes([byte]))
                h.wfile.flush()
        elif fault == "close":
            payload = json.dumps(match_).encode()
            h.send_response(200)
            h.send_header("Content-Length", str(len(payload)))
            h.end_headers()
            h.wfile.write(payload[: len(payload) // 2])
            h.wfile.flush()
            h.close_connection = True
            h.connection.shutdown(socket.SHUT_RDWR)
        elif fault == "reset":  # RST, not FIN: the kernel drops the connection at once
            h.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                    struct.pack("ii", 1, 0))
            h.close_connection = True
            h.connection.close()
        elif fault == "500":
            h._send(500, {"error": "internal server error"})
        elif fault == "garbage":
            h._send(200, None, raw=b"<html>not json{")
        elif fault == "huge":  # 50 MiB, no Content-Length: only a streaming cap stops it
            h.send_response(200)
            h.send_header("Connection", "close")
            h.end_headers()
            h.close_connection = True
            block = b" " * 65536
            try:
                h.wfile.write(b'{"lookup_id": "' + lookup_id.encode() + b'", "notice": "')
                for _ in range(50 * 16):
                    h.wfile.write(block)
            except OSError:
                return
        elif fault == "other_id":
            h._send(200, {**match_, "lookup_id": "01JOTHERLOOKUP0000000000000"})
        elif fault == "unsigned":
            h._send(401, {"error": "bad signature"})
        else:
            raise AssertionError(f"unknown fault {fault}")

    def stop(self) -> None:
        self.stopping.set()
        self.server.shutdown()
        self.server.server_close()


def fault_code(i: int) -> str:
    return f"E99{i:06d}"


def seed_for(servers: dict[str, FaultServer], path: Path) -> Path:
    entries = [{"id": f"fault-{i}", "name": f"Fault {name}", "code": fault_code(i),
                "coverage": [fault_code(i)], "protocol": PROTOCOL, "url": server.url,
                "timeout_ms": 10000, "contact": "Fault desk"}
               for i, (name, server) in enumerate(servers.items())]
    path.write_text(toml_array_of_tables("endpoint", entries), encoding="utf-8")
    return path


def body(fed: Federation, areas: list[str], deadline_ms: int = DEADLINE_MS) -> dict[str, Any]:
    child = fed.world.children[0]
    return {
        "child": {"nhs_number": child.nhs_number, "postcodes": []},
        "areas": areas,
        "purpose": "Assessment under section 17: finding services already involved",
        "basis": {"type": "consent", "given_by": "parent",
                  "given_on": (date.today() - timedelta(days=3)).isoformat(),
                  "reference": "CASE-123", "covers_sensitive_services": False},
        "include_past": True, "deadline_ms": deadline_ms,
    }


def settings(**extra: Any) -> Settings:
    return Settings(**{**UNLIMITED, **extra})


def post(fed: Federation, data: Any, token: str, **kwargs: Any) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}", **kwargs.pop("headers", {})}
    return requests.post(f"{fed.broker.url}/api/v1/lookups", json=data, headers=headers,
                         timeout=60, **kwargs)
