"""Real loopback servers: the broker's JWKS and the kit app, each in a thread."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from joserfc.jwk import ECKey
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from adapters.kit.app import create_kit_app
from adapters.kit.settings import KitSettings
from adapters.kit.sources import COLUMNS
from adapters.protocol import encode_body, generate_signing_key, public_jwks, sign_request

AUTHORITY = "test-cs"
ISSUER = "federator-test-broker"
MAX_BODY = 8192

ROWS = [
    # Amara: a current social worker, a current sensitive service, a past health visitor.
    ["C-1", "943 476 5919", "Amara", "Okafor", "2015-03-12", "LS6 2AB", "false", "",
     "Sam Patel", "Social worker", "children's social care", "false", "Test Council",
     "West Team", "01632 960001", "sam.patel@example.invalid", "SW1", "2025-09-01", ""],
    ["C-1", "943 476 5919", "Amara", "Okafor", "2015-03-12", "LS6 2AB", "false", "",
     "Jo Reed", "Nurse", "sexual health", "true", "Test Health", "", "01632 960002", "",
     "NMC1", "2026-01-05", ""],
    ["C-1", "943 476 5919", "Amara", "Okafor", "2015-03-12", "LS6 2AB", "false", "",
     "Lee Hart", "Health visitor", "health visiting", "false", "Test Health", "",
     "01632 960003", "", "", "2015-04-01", "2019-03-31"],
    # Ben: shielded.
    ["C-2", "", "Ben", "Shield", "2012-07-07", "BD1 1AA", "true",
     "Call the duty manager on 01632 960999", "Kim Lowe", "Social worker",
     "children's social care", "false", "Test Council", "", "01632 960004", "", "", "2024-01-01",
     ""],
]


class LoopbackServer:
    def __init__(self, app: Callable[..., Any]) -> None:
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


class JwksServer(LoopbackServer):
    """The broker's ``/.well-known/jwks.json``, counting how often it is fetched."""

    def __init__(self, keys: list[ECKey]) -> None:
        self.keys = list(keys)
        self.fetches = 0
        super().__init__(self.wsgi)
        self.jwks_url = self.url + "/.well-known/jwks.json"

    def wsgi(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        request = Request(environ)
        if request.path != "/.well-known/jwks.json":
            return Response("not found", status=404)(environ, start_response)
        self.fetches += 1
        return Response(json.dumps(public_jwks(self.keys)),
                        content_type="application/json")(environ, start_response)


@pytest.fixture(scope="session")
def broker_key() -> ECKey:
    return generate_signing_key("broker-" + uuid.uuid4().hex[:6])


@pytest.fixture
def jwks_server(broker_key: ECKey) -> Iterator[JwksServer]:
    server = JwksServer([broker_key])
    yield server
    server.close()


@pytest.fixture
def kit_csv(tmp_path: Path) -> Path:
    path = tmp_path / "authority.csv"
    lines = [",".join(COLUMNS)] + [",".join(_quote(v) for v in row) for row in ROWS]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _quote(value: str) -> str:
    return f'"{value}"' if "," in value or "'" in value else value


@pytest.fixture
def kit_settings(tmp_path: Path, jwks_server: JwksServer, kit_csv: Path) -> KitSettings:
    return KitSettings(
        authority_id=AUTHORITY, name="Test Children's Services",
        jwks_url=jwks_server.jwks_url, broker_issuer=ISSUER, source="csv",
        csv_path=str(kit_csv), max_body_bytes=MAX_BODY,
        audit_log_path=str(tmp_path / "kit-audit.jsonl"),
    )


@pytest.fixture
def serve() -> Iterator[Callable[[Any], LoopbackServer]]:
    servers: list[LoopbackServer] = []

    def start(app: Any) -> LoopbackServer:
        server = LoopbackServer(app)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


@pytest.fixture
def kit_url(kit_settings: KitSettings, serve: Callable[[Any], LoopbackServer]) -> str:
    # Nothing injected: keys are fetched from the JWKS server, replay is in-process.
    return serve(create_kit_app(kit_settings)).url


def lookup_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "lookup_id": "01J" + uuid.uuid4().hex[:20].upper(),
        "child": {"nhs_number": "9434765919", "given_name": "Amara", "family_name": "Okafor",
                  "date_of_birth": "2015-03-12", "postcodes": ["LS6 2AB"]},
        "basis": {"type": "statutory", "power": "children-act-1989-s47", "reference": "S47-1"},
        "purpose": "Section 47 enquiry: finding services already involved",
        "requester": {"id": "user-1", "name": "Pat Asker", "role": "Social worker",
                      "organisation": "Neighbouring Council"},
        "include_past": False,
    }
    body.update(overrides)
    return body


@pytest.fixture
def make_body() -> Callable[..., dict[str, Any]]:
    return lookup_body


@pytest.fixture
def post_lookup(kit_url: str, broker_key: ECKey) -> Callable[..., requests.Response]:
    def post(payload: Any = None, *, body: bytes | None = None, signed_body: bytes | None = None,
             audience: str = AUTHORITY, issuer: str = ISSUER, key: ECKey | None = None,
             now: float | None = None, token: str | None = None,
             authorization: str | None = "sign") -> requests.Response:
        raw = body if body is not None else encode_body(payload or lookup_body())
        headers = {"Content-Type": "application/json"}
        if authorization == "sign":
            token = token or sign_request(signed_body if signed_body is not None else raw,
                                          key or broker_key, issuer=issuer, audience=audience,
                                          now=now if now is not None else time.time())
            headers["Authorization"] = f"Bearer {token}"
        elif authorization is not None:
            headers["Authorization"] = authorization
        return requests.post(f"{kit_url}/lookup", data=raw, headers=headers, timeout=10)
    return post
