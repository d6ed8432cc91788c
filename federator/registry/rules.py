"""Who may do what to an endpoint, and how its status moves. Pure functions."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: action -> (statuses it applies to, status it leads to)
TRANSITIONS: dict[str, tuple[tuple[str, ...], str]] = {
    "approve": (("pending",), "active"),
    "reject": (("pending",), "rejected"),
    "suspend": (("active",), "suspended"),
    "resume": (("suspended",), "active"),
}
#: Which roles may take each action (authority admins only on their own endpoint).
ACTION_ROLES: dict[str, tuple[str, ...]] = {
    "approve": ("broker-admin",),
    "reject": ("broker-admin",),
    "suspend": ("authority-admin", "broker-admin"),
    "resume": ("authority-admin", "broker-admin"),
    "check": ("authority-admin", "broker-admin"),
    "view": ("authority-admin", "broker-admin"),
    "register": ("authority-admin",),
    "change": ("authority-admin",),
}
#: A change to any of these needs a new approval.
REAPPROVE = ("url", "credentials", "protocol")
DETAILS = ("name", "code", "coverage", "protocol", "url", "timeout_ms", "contact")


class Refused(Exception):
    """The action is not allowed; ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def authorise(action: str, role: str, authority: str | None, endpoint_id: str) -> None:
    """Raise ``Refused(403)`` unless ``role`` may take ``action`` on ``endpoint_id``."""
    if role not in ACTION_ROLES.get(action, ()):
        raise Refused(403, f"A {role} cannot {action} an endpoint.")
    if role == "authority-admin" and authority != endpoint_id:
        # The same answer as for a missing endpoint: do not reveal another's.
        raise Refused(404, f"No endpoint {endpoint_id} of your authority.")


def next_status(action: str, status: str) -> str:
    """The status after ``action``; ``Refused(409)`` when it does not apply now."""
    applies, target = TRANSITIONS[action]
    if status not in applies:
        raise Refused(409, f"Cannot {action} an endpoint that is {status}.")
    return target


def needs_reason(action: str) -> bool:
    return action in ("reject", "suspend")


def changed_fields(current: Mapping[str, Any], update: Mapping[str, Any],
                   *, credentials_given: bool) -> list[str]:
    """Names of the details ``update`` changes (``credentials`` when new ones are given)."""
    changed = [k for k in DETAILS if k in update and update[k] != current.get(k)]
    if credentials_given:
        changed.append("credentials")
    return changed


def status_after_change(status: str, changed: list[str]) -> str:
    """A change to URL, protocol or credentials (or any change to a rejected
    endpoint, which resubmits it) sends it back to ``pending``."""
    if status == "rejected" and changed:
        return "pending"
    if any(k in REAPPROVE for k in changed):
        return "pending"
    return status
