"""A real adapter kit with notifications on, over HTTP, and the SMTP server that
catches what it sends: shared by the kit notification tests."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask
from joserfc.jwk import ECKey

from adapters.kit.app import create_kit_app
from adapters.kit.settings import KitSettings
from adapters.kit.sources import COLUMNS
from adapters.protocol import encode_body, generate_signing_key, public_jwks, sign_request
from federator.demo.mail import MailCatcher, MailServer
from federator.demo.serving import ServedApp, bind

AUTHORITY, ISSUER = "notify-cs", "federator-notify-test"
HEADER = (*COLUMNS, "worker_email")
ROWS = [
    # Amara: an allocated worker; two involvements.
    ["C-1", "9434765919", "Amara", "Okafor", "2015-03-12", "LS6 2AB", "false", "",
     "Sam Patel", "Social worker", "children's social care", "false", "Test Council", "",
     "01632 960001", "sam.patel@example.invalid", "", "2025-09-01", "",
     "sam.patel@example.invalid"],
    ["C-1", "9434765919", "Amara", "Okafor", "2015-03-12", "LS6 2AB", "false", "",
     "Jo Reed", "School nurse", "school nursing", "false", "Test Health", "",
     "01632 960002", "jo.reed@example.invalid", "", "2024-01-05", "", ""],
    # Ben: no allocated worker recorded, so the team mailbox is told.
    ["C-2", "", "Ben", "Lowry", "2012-07-07", "BD1 1AA", "false", "",
     "Kim Lowe", "Social worker", "children's social care", "false", "Test Council", "",
     "01632 960004", "", "", "2024-01-01", "", ""],
]
TEAM = "front-door@notify-cs.example.invalid"


class HeldCatcher(MailCatcher):
    """Refuses the first ``refusals`` messages with 451 (try later); holds every
    message until ``gate`` opens."""

    def __init__(self, refusals: int = 0) -> None:
        super().__init__()
        self.refusals = refusals
        self.gate = threading.Event()
        self.gate.set()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        while not self.gate.is_set():
            import asyncio
            await asyncio.sleep(0.02)
        if self.refusals > 0:
            self.refusals -= 1
            return "451 Requested action aborted: try again later"
        return await super().handle_DATA(server, session, envelope)


@pytest.fixture
def key() -> ECKey:
    return generate_signing_key("notify-" + uuid.uuid4().hex[:6])


@pytest.fixture
def jwks(key: ECKey) -> Iterator[str]:
    app = Flask("jwks")
    app.add_url_rule("/.well-known/jwks.json", "jwks", lambda: public_jwks([key]))
    served = bind(0).start(app)
    yield f"{served.url}/.well-known/jwks.json"
    served.stop()


@pytest.fixture
def csv_path(tmp_path: Path) -> Path:
    path = tmp_path / "kit.csv"
    path.write_text("\n".join(",".join(r) for r in (HEADER, *ROWS)) + "\n", encoding="utf-8")
    return path


class Kit:
    def __init__(self, served: ServedApp, app: Flask, mail: MailServer, key: ECKey) -> None:
        self.served, self.app, self.mail, self.key = served, app, mail, key

    def lookup(self, child: dict[str, Any], **extra: Any) -> requests.Response:
        body = encode_body({
            "lookup_id": "01J" + uuid.uuid4().hex[:20].upper(), "child": child,
            "basis": {"type": "statutory", "power": "children-act-1989-s47",
                      "reference": "S47-REF-9"},
            "purpose": "Section 47 enquiry: finding services already involved",
            "requester": {"id": "user-1", "name": "Pat Asker", "role": "Health visitor",
                          "organisation": "Neighbouring Trust",
                          "email": "pat.asker@example.nhs.uk"},
            "include_past": True, **extra})
        token = sign_request(body, self.key, issuer=ISSUER, audience=AUTHORITY)
        return requests.post(f"{self.served.url}/lookup", data=body, timeout=10, headers={
            "Authorization": f"Bearer {token}", "Content-Type": "application/json"})

    @property
    def notifier(self) -> Any:
        return self.app.extensions["federator_kit"]["notifier"]


def start_kit(catcher: MailCatcher, jwks: str, csv_path: Path, key: ECKey,
              **settings: Any) -> Kit:
    from federator.demo.mail import LoopbackController

    controller = LoopbackController(catcher)
    controller.start()
    mail = MailServer(catcher, controller)
    app = create_kit_app(KitSettings(
        authority_id=AUTHORITY, name="Notify Children's Services", jwks_url=jwks,
        broker_issuer=ISSUER, csv_path=str(csv_path), smtp_url=mail.url,
        team_mailbox=TEAM, **{"notify": "immediate", **settings}))
    return Kit(bind(0).start(app), app, mail, key)


@pytest.fixture
def kits() -> Iterator[list[Kit]]:
    started: list[Kit] = []
    yield started
    for kit in started:
        kit.served.stop()
        if kit.notifier is not None:
            kit.notifier.close()
        kit.mail.stop()


AMARA = {"nhs_number": "9434765919", "given_name": "Amara", "family_name": "Okafor",
         "date_of_birth": "2015-03-12", "postcodes": ["LS6 2AB"]}
BEN = {"given_name": "Ben", "family_name": "Lowry", "date_of_birth": "2012-07-07",
       "postcodes": ["BD1 1AA"]}


def body_text(message: Any) -> str:
    return message.get_body(preferencelist=("plain",)).get_content()
