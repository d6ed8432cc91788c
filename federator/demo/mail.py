"""The demo's SMTP server: catches the adapter kits' notifications on loopback.

Every message received is written to ``<directory>/<n>.eml`` (the demo uses
``instance/demo/mail``); ``federator demo mail`` reads them back, grouped by
authority. An ``aiosmtpd`` controller on a port the operating system picks.
"""

from __future__ import annotations

import email
import email.policy
import socket
import threading
from collections.abc import Awaitable
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any, cast

from aiosmtpd.controller import Controller

#: The header the demo kits' team mailboxes are recognised by.
DEMO_MAILBOX = "team@{authority}.demo.invalid"
#: Where a demo kit's witness alerts go (adapters.kit.witness).
ADMIN_MAILBOX = "admin@{authority}.demo.invalid"


class MailCatcher:
    """aiosmtpd handler: keeps each message (in memory and as a file)."""

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory
        self.messages: list[EmailMessage] = []
        self._lock = threading.Lock()
        self.arrived = threading.Condition(self._lock)
        if directory is not None:
            directory.mkdir(parents=True, exist_ok=True)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        raw = envelope.original_content or envelope.content
        message = cast(EmailMessage, email.message_from_bytes(raw, policy=email.policy.default))
        with self.arrived:
            self.messages.append(message)
            if self.directory is not None:
                number = len(list(self.directory.glob("*.eml"))) + 1
                (self.directory / f"{number:05d}.eml").write_bytes(raw)
            self.arrived.notify_all()
        return "250 Message accepted for delivery"

    def wait_for(self, count: int, timeout_s: float = 10.0) -> list[EmailMessage]:
        with self.arrived:
            self.arrived.wait_for(lambda: len(self.messages) >= count, timeout_s)
            return list(self.messages)


class LoopbackController(Controller):
    """aiosmtpd's threaded controller on a loopback port bound beforehand (port 0)."""

    def __init__(self, handler: Any) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        super().__init__(handler, hostname="127.0.0.1", port=self._sock.getsockname()[1])

    def _create_server(self) -> Awaitable[Any]:
        return self.loop.create_server(self._factory_invoker, sock=self._sock,
                                       ssl=self.ssl_context)


@dataclass
class MailServer:
    catcher: MailCatcher
    controller: LoopbackController

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.controller.port}"

    def stop(self) -> None:
        self.controller.stop()


def start_mail_server(directory: Path | None = None) -> MailServer:
    catcher = MailCatcher(directory)
    controller = LoopbackController(catcher)
    controller.start()
    return MailServer(catcher, controller)


def read_mailbox(directory: Path) -> list[EmailMessage]:
    """The messages a demo's mail folder holds, oldest first."""
    if not directory.is_dir():
        return []
    return [cast(EmailMessage, email.message_from_bytes(p.read_bytes(),
                                                        policy=email.policy.default))
            for p in sorted(directory.glob("*.eml"))]
