"""The adapter kit tells the child's allocated worker, over real SMTP (aiosmtpd on
loopback), from a real kit server answering signed lookups over HTTP."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import requests
from joserfc.jwk import ECKey
from support import kit_notify
from support.kit_notify import (
    AMARA,
    AUTHORITY,
    BEN,
    ISSUER,
    TEAM,
    HeldCatcher,
    Kit,
    body_text,
    start_kit,
)

from adapters.protocol import encode_body, sign_request
from federator.demo.mail import MailCatcher, start_mail_server

pytestmark = pytest.mark.integration

# the shared fixtures, under their own names
csv_path = kit_notify.csv_path
jwks = kit_notify.jwks
key = kit_notify.key
kits = kit_notify.kits

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
