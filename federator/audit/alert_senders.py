"""Alerts when an audit flag fires: a JSON POST to a webhook, an RFC 5424 syslog
message over UDP, or an e-mail to the auditors (``FEDERATOR_ALERT_*``).

An alert carries the record's seq, its event, its time and each flag's name
and words, and where to read it: never who asked, never the child, never the
purpose or a flag's reason (which may say more). The trail calls ``submit``
after each flagged record is committed (``AuditTrail.listen``); it only puts
the alert on a bounded queue, and one thread of its own sends it, each
channel with a short time-out: an alert that cannot be sent is counted and
logged (by seq), never a lookup's failure or delay. A full queue drops the
newest alert and counts it (``dropped``).
"""

from __future__ import annotations

import logging
import os
import queue
import socket
import threading
from collections.abc import Callable, Mapping, Sequence
from email.message import EmailMessage
from typing import TYPE_CHECKING, Any

import requests
from sqlalchemy import event

from adapters.kit.notify import smtp_sender
from federator.audit.casework import flag_words
from federator.config import ConfigError, Settings

if TYPE_CHECKING:
    from federator.audit.trail import AuditTrail

log = logging.getLogger(__name__)

#: RFC 5424: facility 13 (log audit), severity 4 (warning)
PRI = 13 * 8 + 4
#: RFC 5612's enterprise number for documentation: an SD-ID of our own
SD_ID = "federator@32473"
TIMEOUT_S = 3.0

Send = Callable[[Mapping[str, Any]], None]


def alert_of(record: Mapping[str, Any], *, broker: str, public_url: str
             ) -> dict[str, Any] | None:
    """The alert for a record, or None when it raised no flag (pure)."""
    names = sorted({str(f["flag"]) for f in record.get("flags") or []
                    if isinstance(f, Mapping) and isinstance(f.get("flag"), str)})
    if not names or not isinstance(record.get("seq"), int):
        return None
    seq = record["seq"]
    return {"type": "federator.audit.flag", "broker": broker, "seq": seq,
            "event": str(record.get("event")), "at": str(record.get("at")),
            "flags": [{"flag": n, "words": flag_words(n)} for n in names],
            "record_url": f"{public_url}/audit/records/{seq}",
            "queue_url": f"{public_url}/audit/queue"}


def _sd_value(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


def _token(text: str, most: int) -> str:
    """A syslog header field: printable US-ASCII without spaces, or ``-``."""
    kept = "".join(c for c in text if 33 <= ord(c) <= 126)[:most]
    return kept or "-"


def syslog_messages(alert: Mapping[str, Any], *, hostname: str, app: str, procid: int
                    ) -> list[bytes]:
    """One RFC 5424 message per flag (pure)."""
    messages = []
    for flag in alert["flags"]:
        sd = (f'[{SD_ID} seq="{alert["seq"]}" flag="{_sd_value(flag["flag"])}" '
              f'event="{_sd_value(alert["event"])}"]')
        text = f"Audit flag {flag['flag']} ({flag['words']}) on record {alert['seq']}"
        header = (f"<{PRI}>1 {_token(alert['at'], 64)} {_token(hostname, 255)} "
                  f"{_token(app, 48)} {procid} flag {sd} ")
        messages.append(header.encode("ascii") + b"\xef\xbb\xbf" + text.encode("utf-8"))
    return messages


def parse_host_port(value: str, variable: str) -> tuple[str, int]:
    host, _, port = value.strip().rpartition(":")
    host = host.strip("[]")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{variable} must look like host:port (for example 127.0.0.1:514)")
    return host, int(port)


def webhook_sender(url: str, timeout_s: float = TIMEOUT_S, *,
                   ca_file: str | None = None) -> Send:
    session = requests.Session()
    # Only the broker's own settings: no REQUESTS_CA_BUNDLE replacing FEDERATOR_CA_FILE,
    # no proxy from the environment, as every other outbound client of the broker.
    session.trust_env = False
    if ca_file:
        session.verify = ca_file

    def send(alert: Mapping[str, Any]) -> None:
        response = session.post(url, json=alert, timeout=timeout_s, allow_redirects=False)
        response.raise_for_status()

    return send


def syslog_sender(address: tuple[str, int], *, app: str) -> Send:
    hostname, procid = socket.gethostname(), os.getpid()

    def send(alert: Mapping[str, Any]) -> None:
        family = socket.getaddrinfo(address[0], address[1], type=socket.SOCK_DGRAM)[0]
        with socket.socket(family[0], socket.SOCK_DGRAM) as sock:
            for message in syslog_messages(alert, hostname=hostname, app=app, procid=procid):
                sock.sendto(message, family[4])

    return send


def email_sender(send_message: Callable[[EmailMessage], None], to: Sequence[str],
                 sender: str) -> Send:
    def send(alert: Mapping[str, Any]) -> None:
        message = EmailMessage()
        words = ", ".join(f["words"] for f in alert["flags"])
        message["Subject"] = f"Audit flag on record {alert['seq']}: {words}"
        message["From"], message["To"] = sender, ", ".join(to)
        message.set_content("\n".join([
            f"Record {alert['seq']} ({alert['event']}, {alert['at']}) raised:",
            *(f"- {f['words']} ({f['flag']})" for f in alert["flags"]), "",
            f"Read it: {alert['record_url']}", f"The review queue: {alert['queue_url']}", ""]))
        send_message(message)

    return send


class Alerts:
    """The queue and the thread that sends each alert on every channel."""

    def __init__(self, channels: Mapping[str, Send], *, broker: str, public_url: str,
                 max_queue: int = 1000) -> None:
        self.channels = dict(channels)
        self.broker, self.public_url = broker, public_url
        self.queue: queue.Queue[dict[str, Any] | None] = queue.Queue(maxsize=max_queue)
        self.sent = self.failed = self.dropped = 0
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def submit(self, record: Mapping[str, Any]) -> None:
        """Called on the request path: never blocks, never raises."""
        try:
            alert = alert_of(record, broker=self.broker, public_url=self.public_url)
            if alert is None or not self.channels:
                return
            self._start()
            self.queue.put_nowait(alert)
        except queue.Full:
            self.dropped += 1
            log.warning("audit alert for record %s dropped: the queue is full",
                        record.get("seq"))
        except Exception:  # an alert must never fail what it reports
            log.exception("audit alert for record %s not queued", record.get("seq"))

    def _start(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="audit-alerts",
                                                daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            alert = self.queue.get()
            if alert is None:
                return
            for name, send in self.channels.items():
                try:
                    send(alert)
                    self.sent += 1
                except Exception as e:
                    self.failed += 1
                    log.warning("audit alert for record %s not sent by %s: %s",
                                alert["seq"], name, type(e).__name__)

    def close(self, timeout_s: float = 5.0) -> None:
        """Send what is queued (within ``timeout_s``), then stop the thread."""
        thread = self._thread
        if thread is not None and thread.is_alive():
            try:
                self.queue.put(None, timeout=timeout_s)
            except queue.Full:
                return
            thread.join(timeout_s)


def make_alerts(settings: Settings) -> Alerts | None:
    """The channels the settings name (None: no alerts); ConfigError names a bad one."""
    channels: dict[str, Send] = {}
    if settings.alert_webhook:
        url = settings.alert_webhook
        if not url.startswith(("https://", "http://")) or (
                settings.production and not url.startswith("https://")):
            raise ConfigError("FEDERATOR_ALERT_WEBHOOK must be an https:// URL"
                              + ("" if settings.production else " (or http:// in development)"))
        channels["webhook"] = webhook_sender(url, ca_file=settings.ca_bundle)
    if settings.alert_syslog:
        try:
            address = parse_host_port(settings.alert_syslog, "FEDERATOR_ALERT_SYSLOG")
        except ValueError as e:
            raise ConfigError(str(e)) from e
        channels["syslog"] = syslog_sender(address, app=settings.broker_id)
    if settings.alert_email:
        if not settings.alert_smtp_url:
            raise ConfigError("FEDERATOR_ALERT_SMTP_URL must be set to send "
                              "FEDERATOR_ALERT_EMAIL")
        try:
            smtp = smtp_sender(settings.alert_smtp_url, timeout_s=TIMEOUT_S * 2)
        except ValueError as e:
            raise ConfigError("FEDERATOR_ALERT_SMTP_URL must look like smtp://host:port "
                              "or smtps://host:port") from e
        channels["email"] = email_sender(smtp, settings.alert_email,
                                         settings.alert_email_from)
    if not channels:
        return None
    return Alerts(channels, broker=settings.broker_id, public_url=settings.public_url)


def install_alerts(trail: AuditTrail, settings: Settings) -> Alerts | None:
    """Alerts for every flagged record ``trail`` writes; closed with its engine."""
    alerts = make_alerts(settings)
    if alerts is not None:
        trail.listen(alerts.submit)
        event.listen(trail.engine, "engine_disposed", lambda _engine: alerts.close())
    return alerts
