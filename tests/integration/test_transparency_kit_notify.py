"""The adapter kit tells the child's allocated worker, over real SMTP (aiosmtpd on
loopback), from a real kit server answering signed lookups over HTTP."""

from __future__ import annotations

import json
import threading
import time
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
from federator.demo.mail import MailCatcher, MailServer, start_mail_server
from federator.demo.serving import ServedApp, bind

pytestmark = pytest.mark.integration

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


def test_the_allocated_worker_or_else_the_team_mailbox_is_told(
        kits: list[Kit], jwks: str, csv_path: Path, key: ECKey) -> None:
    kit = start_kit(MailCatcher(), jwks, csv_path, key)
    kits.append(kit)
    amara = kit.lookup(AMARA)
    assert amara.status_code == 200 and amara.json()["status"] == "match"
    ben = kit.lookup(BEN)
    assert ben.json()["status"] == "match"
    nobody = kit.lookup({**BEN, "given_name": "Nobody", "family_name": "Else"})
    assert nobody.json()["status"] == "no_match"
    messages = kit.mail.catcher.wait_for(2)
    assert kit.notifier.wait_idle(10)
    assert sorted(str(m["To"]) for m in messages) == sorted(["sam.patel@example.invalid", TEAM])
    to_sam = next(m for m in messages if m["To"] == "sam.patel@example.invalid")
    content = body_text(to_sam)
    assert amara.json()["lookup_id"] in content and "C-1" in content
    assert "Pat Asker" in content and "pat.asker@example.nhs.uk" in content
    assert "statutory" in content and "Section 47 enquiry" in content
    # the answer's other professional, the child's details and the case reference stay out
    for value in ("Jo Reed", "jo.reed@example.invalid", "01632 960002", "Amara", "Okafor",
                  "9434765919", "2015-03-12", "LS6", "S47-REF-9"):
        assert value not in content, value
    assert len(kit.mail.catcher.messages) == 2  # nothing for the no_match


def test_sending_never_holds_up_the_answer_and_refusals_are_tried_again(
        kits: list[Kit], jwks: str, csv_path: Path, key: ECKey) -> None:
    catcher = HeldCatcher(refusals=1)
    catcher.gate.clear()  # the mail server accepts nothing until the answer is back
    kit = start_kit(catcher, jwks, csv_path, key)
    kits.append(kit)
    kit.notifier.backoff_s = 0.05
    answer = kit.lookup(AMARA)
    assert answer.status_code == 200 and answer.json()["status"] == "match"
    assert catcher.messages == [] and not catcher.gate.is_set()
    catcher.gate.set()
    [message] = catcher.wait_for(1)
    assert answer.json()["lookup_id"] in body_text(message)
    assert kit.notifier.wait_idle(10)
    assert catcher.refusals == 0 and kit.notifier.sent == 1


def test_off_tells_nobody(kits: list[Kit], jwks: str, csv_path: Path, key: ECKey) -> None:
    kit = start_kit(MailCatcher(), jwks, csv_path, key, notify="off")
    kits.append(kit)
    assert kit.notifier is None
    assert kit.lookup(AMARA).json()["status"] == "match"
    time.sleep(0.3)
    assert kit.mail.catcher.messages == []


def test_digest_mode_sends_one_mail_per_worker(kits: list[Kit], jwks: str, csv_path: Path,
                                               key: ECKey) -> None:
    kit = start_kit(MailCatcher(), jwks, csv_path, key, notify="digest", notify_digest_s=1)
    kits.append(kit)
    ids = [kit.lookup(AMARA).json()["lookup_id"] for _ in range(3)]
    messages = kit.mail.catcher.wait_for(1, timeout_s=10)
    time.sleep(0.2)
    assert len(kit.mail.catcher.messages) == 1
    content = body_text(messages[0])
    assert all(i in content for i in ids) and "3 lookups" in str(messages[0]["Subject"])
    assert json.dumps(content).count("Our reference:") == 3


def test_the_demo_mail_server_writes_each_message_to_its_folder(tmp_path: Path) -> None:
    from email.message import EmailMessage

    from adapters.kit.notify import smtp_sender
    from federator.demo.mail import read_mailbox

    server = start_mail_server(tmp_path / "mail")
    try:
        message = EmailMessage()
        message["From"], message["To"], message["Subject"] = "a@x.invalid", "b@x.invalid", "Hi"
        message.set_content("hello")
        smtp_sender(server.url)(message)
        [stored] = read_mailbox(tmp_path / "mail")
        assert stored["Subject"] == "Hi" and "hello" in body_text(stored)
    finally:
        server.stop()


def test_the_kit_served_by_gunicorn_workers_sends_too(tmp_path: Path, jwks: str,
                                                      csv_path: Path, key: ECKey) -> None:
    """gunicorn builds the app in its master and forks: the sender thread must
    start in the worker that answers."""
    import socket
    import subprocess
    import sys

    server = start_mail_server()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = tmp_path / "kit.toml"
    config.write_text("\n".join([
        f'authority_id = "{AUTHORITY}"', 'name = "Notify Children\'s Services"',
        f'jwks_url = "{jwks}"', f'broker_issuer = "{ISSUER}"', 'source = "csv"',
        f'csv_path = "{csv_path}"', 'notify = "immediate"', f'smtp_url = "{server.url}"',
        f'team_mailbox = "{TEAM}"', ""]), encoding="utf-8")
    process = subprocess.Popen(
        [sys.executable, "-m", "adapters.kit", "serve", "--config", str(config),
         "--port", str(port), "--workers", "2"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(150):
            try:
                if requests.get(f"{url}/health", timeout=1).ok:
                    break
            except requests.RequestException:
                time.sleep(0.1)
        body = encode_body({
            "lookup_id": "01JGUNICORN", "child": BEN,
            "basis": {"type": "consent", "given_by": "parent", "reference": "R"},
            "purpose": "Assessment under section 17", "include_past": False,
            "requester": {"id": "u", "name": "Pat Asker", "role": "Health visitor",
                          "organisation": "Neighbouring Trust"}})
        token = sign_request(body, key, issuer=ISSUER, audience=AUTHORITY)
        answer = requests.post(f"{url}/lookup", data=body, timeout=10, headers={
            "Authorization": f"Bearer {token}", "Content-Type": "application/json"})
        assert answer.status_code == 200 and answer.json()["status"] == "match"
        [message] = server.catcher.wait_for(1, timeout_s=15)
        assert message["To"] == TEAM and "01JGUNICORN" in body_text(message)
    finally:
        process.terminate()
        process.wait(timeout=10)
        server.stop()
