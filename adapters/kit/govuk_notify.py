"""Sending the kit's e-mails through GOV.UK Notify instead of SMTP.

Notify sends by template: the authority makes one e-mail template in its
Notify service whose subject is ``((subject))`` and whose body is ``((body))``
(docs/kit-notify.md), and the kit fills both with exactly the subject and the
text it would have sent by SMTP (:mod:`adapters.kit.notify`): the lookup id,
the authority's own child reference, who asked and why (the purpose quoted line
by line), the basis type and what the kit answered. No other personalisation is
sent, no child name, date of birth, NHS number or address: Notify keeps what it
sends for its retention period, and its template cannot carry the SMTP mail's
headers anyway (From is the Notify service's own, Message-ID is Notify's).

The official client (``notifications-python-client``) signs each request with a
fresh HS256 JWT made from the API key (``{name}-{service id}-{secret}``); the
key is a secret, read from a file or ``KIT_NOTIFY_API_KEY`` and never logged.
Notify's answers decide what happens next (:func:`sender`): 429 (rate or daily
limit) and 5xx, or no answer at all, are worth trying again (``SendFailed``, an
``OSError``: the :class:`~adapters.kit.notify.Notifier` backs off as it does
for SMTP); 400 and 403 (a wrong template, recipient or key, a clock out by more
than 30 s) will not get better by asking again (``SendRefused``: counted
failed and logged, never retried).
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable, Mapping
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from notifications_python_client.errors import APIError
from notifications_python_client.notifications import NotificationsAPIClient

from adapters.kit.notify import SendRefused, smtp_sender
from adapters.kit.settings import NOTIFY_API, SettingsError

API_KEY_VARIABLE = "KIT_NOTIFY_API_KEY"
_UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
#: Notify's API key: the key's name, the service id, the secret (both UUIDs).
API_KEY = re.compile(rf"^.+-({_UUID})-({_UUID})$")
UUID = re.compile(rf"^{_UUID}$")


class SendFailed(OSError):
    """Notify did not take the message now (429, 5xx, no answer): try again later."""


def read_api_key(path: str | None, environ: Mapping[str, str] | None = None) -> str:
    """The API key from ``path`` (its first line) or else ``KIT_NOTIFY_API_KEY``.
    ``SettingsError`` names where it looked, never the key."""
    env = os.environ if environ is None else environ
    if path:
        try:
            text = Path(path).read_text(encoding="utf-8").strip()
        except OSError as e:
            raise SettingsError(f"notify_api_key_file: cannot read {path}: "
                             f"{type(e).__name__}") from e
        where = "notify_api_key_file"
    else:
        text, where = (env.get("KIT_NOTIFY_API_KEY") or "").strip(), API_KEY_VARIABLE
    if not text:
        raise SettingsError(f"{where}: no GOV.UK Notify API key (set notify_api_key_file or "
                         f"{API_KEY_VARIABLE})")
    key = text.splitlines()[0].strip()
    if not API_KEY.match(key.lower()):
        raise SettingsError(f"{where}: not a GOV.UK Notify API key (expected "
                         "name-<service id>-<secret>, as Notify shows it)")
    return key


def personalisation(message: EmailMessage) -> dict[str, str]:
    """The two template fields, from the message the SMTP path would send."""
    return {"subject": str(message["Subject"] or ""), "body": message.get_content().rstrip()}


def error_names(e: APIError) -> str:
    """Notify's error kinds (``BadRequestError``, ``AuthError``...), never its
    messages: a message may quote what was sent."""
    try:
        errors = e.response.json().get("errors") or []  # type: ignore[union-attr]
        names = sorted({str(item.get("error")) for item in errors if isinstance(item, dict)})
    except (AttributeError, TypeError, ValueError):
        names = []
    return ", ".join(names) or "no error given"


def sender(api_key: str, template_id: str, *, base_url: str = NOTIFY_API,
           timeout_s: float = 10.0) -> Callable[[EmailMessage], None]:
    """A function that sends one composed message through Notify's
    ``POST /v2/notifications/email``; raises ``SendFailed`` or ``SendRefused``."""
    if not UUID.match(template_id.lower()):
        raise SettingsError("notify_template_id: must be the template's id (a UUID)")
    client = NotificationsAPIClient(api_key, base_url=base_url, timeout=timeout_s)
    lock = threading.Lock()  # the client (a requests.Session) is not thread-safe

    def send(message: EmailMessage) -> None:
        try:
            with lock:
                client.send_email_notification(
                    email_address=str(message["To"]), template_id=template_id,
                    personalisation=personalisation(message))
        except APIError as e:
            status = e.status_code
            if status == 429 or status >= 500:  # no answer at all is 503 to the client
                raise SendFailed(f"GOV.UK Notify: HTTP {status} ({error_names(e)})") from None
            raise SendRefused(f"GOV.UK Notify refused: HTTP {status} ({error_names(e)})"
                              ) from None

    return send


def make_sender(settings: Any, environ: Mapping[str, str] | None = None
                ) -> Callable[[EmailMessage], None] | None:
    """How the kit sends e-mail, from its settings (``notify_via``): SMTP or Notify;
    ``None`` when neither is configured."""
    if settings.notify_via == "govuk_notify":
        return sender(read_api_key(settings.notify_api_key_file, environ),
                      settings.notify_template_id or "", base_url=settings.notify_base_url)
    return smtp_sender(settings.smtp_url) if settings.smtp_url else None
