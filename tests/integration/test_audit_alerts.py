"""Alerts when audit flags fire, against real receivers on loopback: a webhook
(an HTTP server), syslog (a UDP socket, RFC 5424) and e-mail (an SMTP server),
from a broker whose lookups go to kits over HTTP. Each alert carries the
record's seq and flags and nothing that identifies anyone; a receiver that
hangs or fails neither fails nor slows the lookup."""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
import requests

from federator.audit.alert_senders import Alerts
from federator.config import Settings
from federator.demo.federation import Federation, start_federation
from federator.demo.mail import start_mail_server
from federator.demo.world import Child

pytestmark = pytest.mark.integration

PURPOSE = "Assessment under section 17: finding services already involved"
JUSTIFICATION = "Risk of significant harm if the family were told of this enquiry."
#: RFC 5424: <PRI>VERSION SP TIMESTAMP SP HOSTNAME SP APP-NAME SP PROCID SP MSGID SP SD SP MSG
SYSLOG = re.compile(rb'^<108>1 (\S+) (\S+) (\S+) (\d+) flag '
                    rb'(\[federator@32473 seq="(\d+)" flag="([a-z_]+)" event="([a-z_.]+)"\]) '
                    rb'\xef\xbb\xbf(.*)$', re.S)


class Hook(BaseHTTPRequestHandler):
    bodies: ClassVar[list[dict[str, Any]]] = []
    hold = threading.Event()  # set: answer at once; clear: hang until set
    status = 204

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        Hook.bodies.append(body)
        Hook.hold.wait(10)
        self.send_response(Hook.status)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def receivers() -> Iterator[dict[str, Any]]:
    hook = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    udp.settimeout(10)
    mail = start_mail_server()
    Hook.hold.set()
    yield {"webhook": f"http://127.0.0.1:{hook.server_address[1]}/alerts", "udp": udp,
           "syslog": f"127.0.0.1:{udp.getsockname()[1]}", "mail": mail}
    Hook.hold.set()
    hook.shutdown()
    hook.server_close()
    udp.close()
    mail.stop()


@pytest.fixture(scope="module")
def fed(tmp_path_factory: pytest.TempPathFactory, receivers: dict[str, Any]
        ) -> Iterator[Federation]:
    directory: Path = tmp_path_factory.mktemp("alerts")
    federation = start_federation(directory, base=Settings(
        database_url=f"sqlite:///{directory / 'broker.sqlite'}", deadline_default_ms=3000,
        alert_webhook=receivers["webhook"], alert_syslog=receivers["syslog"],
        alert_email=("auditors@council.example",), alert_smtp_url=receivers["mail"].url,
        alert_email_from="federator@council.example"))
    yield federation
    federation.stop()


def alerts_of(fed: Federation) -> Alerts:
    [listener] = fed.app.extensions["federator"].trail.listeners
    alerts: Alerts = listener.__self__
    return alerts


def safeguarding_lookup(fed: Federation, child: Child) -> tuple[requests.Response, float]:
    began = time.perf_counter()
    response = requests.post(
        f"{fed.broker.url}/api/v1/lookups", timeout=30,
        headers={"Authorization": f"Bearer {fed.token('practitioner')}"},
        json={"child": child.identity(), "purpose": PURPOSE, "include_past": True,
              "basis": {"type": "safeguarding", "justification": JUSTIFICATION}})
    return response, time.perf_counter() - began


def identities(fed: Federation, child: Child) -> list[str]:
    """What no alert may carry: the child, who asked, why."""
    found = [child.nhs_number, child.given_name, child.family_name, PURPOSE, JUSTIFICATION,
             "demo-practitioner-1", child.date_of_birth.isoformat()]
    return [s for s in found if s]


def test_each_channel_carries_the_seq_and_flag_and_no_identity(fed, receivers):
    child = next(c for c in fed.world.children if c.known_to and not c.shielded)
    Hook.bodies.clear()
    response, _ = safeguarding_lookup(fed, child)
    assert response.status_code == 200, response.text
    trail = fed.app.extensions["federator"].trail
    record = next(r for r in trail.records(event="lookup.requested", limit=1000)
                  if r["lookup_id"] == response.json()["lookup_id"])
    assert "safeguarding_basis" in {f["flag"] for f in record["flags"]}

    datagram, _ = receivers["udp"].recvfrom(65536)
    messages = [datagram]
    receivers["udp"].settimeout(1)
    try:
        while True:
            messages.append(receivers["udp"].recvfrom(65536)[0])
    except TimeoutError:
        pass
    receivers["udp"].settimeout(10)
    parsed = [SYSLOG.match(m) for m in messages]
    assert all(parsed), messages
    assert {(int(p.group(6)), p.group(7).decode()) for p in parsed if p} >= {
        (record["seq"], "safeguarding_basis")}
    broker = fed.app.extensions["federator"].settings.broker_id.encode()
    assert all(p.group(3) == broker and p.group(8) == b"lookup.requested"
               and p.group(1) == record["at"].encode() for p in parsed if p)

    deadline = time.monotonic() + 10
    while not Hook.bodies and time.monotonic() < deadline:
        time.sleep(0.05)
    [hook] = Hook.bodies
    assert hook["seq"] == record["seq"] and hook["event"] == "lookup.requested"
    assert "safeguarding_basis" in [f["flag"] for f in hook["flags"]]
    assert hook["record_url"].endswith(f"/audit/records/{record['seq']}")

    [mail] = receivers["mail"].catcher.wait_for(1)
    assert mail["To"] == "auditors@council.example"
    assert f"record {record['seq']}" in mail["Subject"]
    body = mail.get_content()

    for carried in (*messages, json.dumps(hook).encode(), (mail["Subject"] + body).encode()):
        for identity in identities(fed, child):
            assert identity.encode() not in carried, identity
    alerts = alerts_of(fed)
    assert alerts.failed == 0 and alerts.sent >= 3


def test_a_receiver_that_hangs_or_fails_neither_fails_nor_slows_a_lookup(fed, receivers):
    child = next(c for c in fed.world.children if c.known_to and not c.shielded)
    safeguarding_lookup(fed, child)  # warm
    _, usual = safeguarding_lookup(fed, child)
    alerts = alerts_of(fed)
    time.sleep(0.5)
    Hook.bodies.clear()
    Hook.hold.clear()  # the webhook now hangs past the sender's time-out
    failed = alerts.failed
    try:
        response, took = safeguarding_lookup(fed, child)
        assert response.status_code == 200
        assert took < usual + 1.0, (took, usual)  # not waiting for the webhook (3 s)
        deadline = time.monotonic() + 10
        while alerts.failed == failed and time.monotonic() < deadline:
            time.sleep(0.05)
        assert alerts.failed == failed + 1  # the webhook timed out, off the request path
    finally:
        Hook.hold.set()
    Hook.status = 500
    try:
        response, _ = safeguarding_lookup(fed, child)
        assert response.status_code == 200
        deadline = time.monotonic() + 10
        while alerts.failed == failed + 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert alerts.failed == failed + 2
    finally:
        Hook.status = 204
