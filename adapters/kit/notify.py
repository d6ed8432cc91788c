"""Telling the child's own worker that someone asked about the child.

When the kit answers ``match`` it notifies the child's allocated worker (the
record's ``worker_email``) or else the service's team mailbox, by e-mail
through SMTP: who asked (name, role, organisation, contact), when, purpose,
basis type, the lookup id, the authority's own child reference, and what the
kit actually answered (:func:`what_we_sent`: professionals shared, a notice
only, everyone withheld, or too late). A sensitive service held back for want
of a covering basis has its own worker told (the answer may even have been the
one a child not known here gets). Never another authority's answer, never
anything else about the child. Every value is on one line, and the purpose,
the one free text, is quoted line by line, so neither can forge a line.

Modes, per authority: ``immediate`` (one e-mail per lookup), ``digest`` (one
e-mail per recipient every ``notify_digest_s``, a day by default) and
``off``. Sending happens on a background thread, never on the lookup's path:
the queue is bounded (a full queue drops the notification and logs it), and
failed sends are tried again with exponential backoff. Pending notifications
live in memory only: a restart loses them (the kit's audit log still holds
every lookup).

``compose`` and ``compose_digest`` are pure; :class:`Notifier` is the I/O.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import logging
import os
import queue
import smtplib
import ssl
import threading
import time
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any
from urllib.parse import unquote, urlsplit

log = logging.getLogger("adapters.kit.notify")

MODES = ("immediate", "digest", "off")


@dataclass(frozen=True)
class Notification:
    """One lookup that reached a child this authority knows."""

    to: str
    authority_name: str
    child_ref: str
    lookup_id: str
    at: str
    purpose: str
    basis_type: str
    requester_name: str
    requester_role: str
    requester_organisation: str
    requester_contact: str
    #: what the kit answered, in words (:func:`what_we_sent`)
    told: str = ""


# What the kit sent, as ``what_we_sent`` names it.
SHARED, NOTICE_ONLY, NONE_SHARED, WITHHELD, UNSEEN = (
    "shared", "notice_only", "none_shared", "withheld", "unseen")


def what_we_sent(kind: str, *, authority: str, count: int = 0, late: bool = False) -> str:
    """One sentence, from what the kit's answer held: ``shared`` (``count``
    professionals), ``notice_only``, ``none_shared`` (known, nobody fitted what was
    asked), ``withheld`` (this worker's sensitive service held back, ``count`` others
    shared) or ``unseen`` (answered as for a child not known here). ``late``: the
    answer was ready only after the request had expired."""
    people = f"{count} professional{'s' if count != 1 else ''}"
    said = {
        SHARED: f"{authority} answered that it knows this child and sent Federator how to "
                f"reach {people} working with them.",
        NOTICE_ONLY: f"{authority} answered that it knows this child with a notice only: "
                     "no professional's details were sent.",
        NONE_SHARED: f"{authority} answered that it knows this child but sent no "
                     "professional's details: none fitted what was asked.",
        WITHHELD: f"{authority} did not share your service's involvement: the lawful basis "
                  "given does not cover sensitive services. "
                  + (f"It sent how to reach {people} of other services." if count else
                     "It sent no professional's details."),
        UNSEEN: f"{authority} answered as it does for a child it does not know: the child "
                "is known here only through your service, which the lawful basis given "
                "does not cover, so nothing was shared, not even that the child is known. "
                "You may decide to contact the person who asked.",
    }[kind]
    if late:
        said += (" The answer was ready only after the request had expired, so Federator "
                 "was no longer waiting: the person who asked was not shown it.")
    return said


def one_line(value: Any) -> str:
    """``value`` as text on one line: line breaks and other control characters
    become spaces."""
    return " ".join("".join(" " if unicodedata.category(c) in ("Cc", "Zl", "Zp") else c
                            for c in str(value or "")).split())


def quoted(text: str, prefix: str = "  > ") -> list[str]:
    """Free text line by line, each behind ``prefix``: it cannot pass for the
    e-mail's own lines."""
    return [prefix + one_line(line) for line in (text.splitlines() or [""])]


def notification_for(wire: dict[str, Any], *, to: str, child_ref: str, authority_name: str,
                     at: str, told: str = "") -> Notification:
    """From a validated wire request: only the fields the worker may see."""
    requester = wire.get("requester") or {}
    basis = wire.get("basis") or {}
    return Notification(
        to=to, authority_name=authority_name, child_ref=child_ref,
        lookup_id=one_line(wire["lookup_id"]), at=at, purpose=str(wire.get("purpose") or ""),
        basis_type=one_line(basis.get("type")),
        requester_name=one_line(requester.get("name")),
        requester_role=one_line(requester.get("role")),
        requester_organisation=one_line(requester.get("organisation")),
        requester_contact=one_line(requester.get("email")), told=told,
    )


def _lines(n: Notification) -> list[str]:
    return [
        f"Lookup id:      {one_line(n.lookup_id)}",
        f"When:           {one_line(n.at)}",
        f"Our reference:  {one_line(n.child_ref)}",
        f"Asked by:       {one_line(n.requester_name) or 'not given'}",
        f"Role:           {one_line(n.requester_role) or 'not given'}",
        f"Organisation:   {one_line(n.requester_organisation) or 'not given'}",
        f"Contact:        {one_line(n.requester_contact) or 'not given'}",
        "Purpose, as the person who asked wrote it:",
        *quoted(n.purpose),
        f"Lawful basis:   {one_line(n.basis_type)}",
        f"What we sent:   {n.told or 'not recorded'}",
    ]


FOOTER = (
    "Nothing else about the child was shared. If this lookup looks wrong, tell your "
    "information governance lead and quote the lookup id."
)


def compose(n: Notification, *, sender: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = n.to
    msg["Subject"] = f"Federator: a lookup about your child {n.child_ref}"
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = make_msgid(domain="federator-kit")
    msg.set_content("\n".join([
        f"Someone asked {one_line(n.authority_name)} through Federator who is working with "
        "a child you work with.", "", *_lines(n), "",
        FOOTER, ""]))
    return msg


def compose_digest(items: Sequence[Notification], *, sender: str) -> EmailMessage:
    first = items[0]
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = first.to
    msg["Subject"] = f"Federator: {len(items)} lookup{'s' if len(items) != 1 else ''} " \
                     "about children you work with"
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = make_msgid(domain="federator-kit")
    body = [f"Lookups through Federator that reached {first.authority_name} about "
            "children you are allocated to, since the last digest:", ""]
    for item in items:
        body += [*_lines(item), ""]
    body += [FOOTER, ""]
    msg.set_content("\n".join(body))
    return msg


def compose_witness_alert(reason: str, *, to: str, sender: str, authority_name: str,
                          broker: str) -> EmailMessage:
    """To the kit's admin: the broker's audit trail no longer extends the
    checkpoint this kit holds (``adapters.kit.witness``). Hashes and sizes only."""
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = f"Federator: the broker's audit trail was rewritten ({authority_name})"
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = make_msgid(domain="federator-kit")
    msg.set_content("\n".join([
        f"The adapter for {authority_name} witnesses the audit trail of the broker at "
        f"{broker}. The trail no longer extends the signed checkpoint the adapter holds:",
        "", reason, "",
        "Lookups are still answered. Keep the held checkpoint "
        "(federator-adapter witness show) and give it to the broker's auditors: "
        "federator audit verify --checkpoint FILE names the first missing or changed "
        "record.", ""]))
    return msg


# --------------------------------------------------------------------------
# SMTP
# --------------------------------------------------------------------------


def smtp_sender(url: str, *, timeout_s: float = 10.0) -> Callable[[EmailMessage], None]:
    """``smtp://[user:password@]host[:port]`` (``?starttls=true`` to upgrade) or
    ``smtps://...``: a function that sends one message."""
    parts = urlsplit(url)
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
        raise ValueError("smtp_url: must look like smtp://host:port or smtps://host:port")
    host, tls = parts.hostname, parts.scheme == "smtps"
    port = parts.port or (465 if tls else 25)
    starttls = "starttls=true" in (parts.query or "").lower()
    user = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password else None

    def send(message: EmailMessage) -> None:
        context = ssl.create_default_context()
        client: smtplib.SMTP = (smtplib.SMTP_SSL(host, port, timeout=timeout_s, context=context)
                                if tls else smtplib.SMTP(host, port, timeout=timeout_s))
        with client:
            if starttls:
                client.starttls(context=context)
            if user is not None:
                client.login(user, password or "")
            client.send_message(message)

    return send


# --------------------------------------------------------------------------
# The background sender
# --------------------------------------------------------------------------


class SendRefused(Exception):
    """The mail service refused the message for good (GOV.UK Notify's 400 or 403):
    counted failed, never tried again."""


class Notifier:
    """Queues notifications and sends them on its own thread."""

    def __init__(self, send: Callable[[EmailMessage], None], *, mode: str = "immediate",
                 sender: str = "federator-kit@localhost", max_queue: int = 1000,
                 attempts: int = 6, backoff_s: float = 1.0, max_backoff_s: float = 300.0,
                 digest_s: float = 86400.0, clock: Callable[[], float] = time.monotonic
                 ) -> None:
        if mode not in MODES:
            raise ValueError(f"notify: must be one of {', '.join(MODES)}, not {mode!r}")
        self.send, self.mode, self.sender = send, mode, sender
        self.attempts, self.backoff_s, self.max_backoff_s = attempts, backoff_s, max_backoff_s
        self.digest_s, self.clock = digest_s, clock
        self.queue: queue.Queue[Notification | EmailMessage | None] = queue.Queue(
            maxsize=max_queue)
        self.dropped = 0
        self.sent = 0
        self.failed = 0
        self._retries: list[tuple[float, int, EmailMessage, int]] = []
        self._order = itertools.count()
        self._digest: dict[str, list[Notification]] = {}
        self._next_digest = clock() + digest_s
        self._idle = threading.Condition()
        self._busy = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._owner_pid = 0
        self._start_lock = threading.Lock()

    def _ensure_thread(self) -> None:
        """Start the sender thread on first use, in this process: gunicorn builds the
        app in its master and forks workers, which inherit no threads."""
        with self._start_lock:
            if (self._thread is None or not self._thread.is_alive()
                    or self._owner_pid != os.getpid()):
                self._owner_pid = os.getpid()
                self._thread = threading.Thread(target=self._run, name="kit-notify",
                                                daemon=True)
                self._thread.start()

    # -- the lookup's side: never blocks -----------------------------------------

    def submit(self, notification: Notification | EmailMessage) -> bool:
        """Queue a notification (or a composed message, sent as it is, digest or not)."""
        if self.mode == "off" or self._stop.is_set():
            return False
        self._ensure_thread()
        with self._idle:
            self._busy += 1
        try:
            self.queue.put_nowait(notification)
        except queue.Full:
            with self._idle:
                self._busy -= 1
                self._idle.notify_all()
            self.dropped += 1
            log.warning("notification queue full: one notification dropped (lookup %s)",
                        getattr(notification, "lookup_id", "none"))
            return False
        return True

    # -- the thread ------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            now = self.clock()
            wake = [self._next_digest] if self.mode == "digest" else []
            if self._retries:
                wake.append(self._retries[0][0])
            timeout = max(0.0, min(wake) - now) if wake else 1.0
            try:
                item = self.queue.get(timeout=min(timeout, 1.0))
            except queue.Empty:
                item = None
            if item is not None:
                self._accept(item)
            self._due()

    def _accept(self, item: Notification | EmailMessage) -> None:
        try:
            if isinstance(item, EmailMessage):
                self._attempt(item, 1)
            elif self.mode == "digest":
                self._digest.setdefault(item.to, []).append(item)
            else:
                self._attempt(compose(item, sender=self.sender), 1)
        finally:
            with self._idle:
                self._busy -= 1
                self._idle.notify_all()

    def _due(self) -> None:
        now = self.clock()
        while self._retries and self._retries[0][0] <= now:
            with self._idle:  # in flight: counted as busy until the attempt ends
                _, _, message, attempt = heapq.heappop(self._retries)
                self._busy += 1
            try:
                self._attempt(message, attempt)
            finally:
                with self._idle:
                    self._busy -= 1
                    self._idle.notify_all()
        if self.mode == "digest" and now >= self._next_digest:
            self.send_digests()

    def send_digests(self) -> None:
        """Send every recipient's digest now (the thread does it every ``digest_s``)."""
        self._next_digest = self.clock() + self.digest_s
        pending, self._digest = self._digest, {}
        for items in pending.values():
            self._attempt(compose_digest(items, sender=self.sender), 1)

    def _attempt(self, message: EmailMessage, attempt: int) -> None:
        try:
            self.send(message)
            self.sent += 1
        except SendRefused as e:
            self.failed += 1
            log.error("notification not sent, not tried again: %s", e)
            return
        except (OSError, smtplib.SMTPException) as e:
            if attempt >= self.attempts:
                self.failed += 1
                log.error("notification not sent after %d attempts: %s", attempt,
                          type(e).__name__)
                return
            delay = min(self.backoff_s * 2 ** (attempt - 1), self.max_backoff_s)
            log.warning("notification send failed (%s); trying again in %.1f s",
                        type(e).__name__, delay)
            with self._idle:
                heapq.heappush(self._retries,
                               (self.clock() + delay, next(self._order), message, attempt + 1))

    # -- for tests and shutdown ----------------------------------------------------

    def pending(self) -> int:
        with self._idle:
            return self._busy + len(self._retries)

    def wait_idle(self, timeout_s: float = 10.0) -> bool:
        """Until nothing is queued or waiting for a retry (digests not counted)."""
        limit = time.monotonic() + timeout_s
        with self._idle:
            while self._busy or self._retries:
                left = limit - time.monotonic()
                if left <= 0:
                    return False
                self._idle.wait(min(left, 0.1))
        return True

    def close(self) -> None:
        self._stop.set()
        # wake the thread now rather than at its next look at the queue (a full queue:
        # it is not waiting on it)
        with contextlib.suppress(queue.Full):
            self.queue.put_nowait(None)
        if self._thread is not None and self._thread.is_alive():
            self._thread.join(timeout=5)
