"""Who may do what to an endpoint, and how its status moves. Pure functions."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from federator.registry.policy import shares_more

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
#: Who receives children's identities, and as whom: any change to one of these
#: needs a broker admin's approval again (``coverage`` only when it widens).
WIDENING = ("name", "code", "protocol", "url", "credentials")
DETAILS = ("name", "code", "coverage", "protocol", "url", "timeout_ms", "contact", "policy")
NATIONAL = "national"
#: Areas named in a status reason before "and N more".
AREAS_SHOWN = 10
REASON_LIMIT = 2000
NEEDS_APPROVAL = "Needs approval again: "


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


def resume_problem(role: Any, suspended_by: Any) -> str | None:
    """Why ``role`` may not resume an endpoint suspended by ``suspended_by``: an
    authority's admin cannot undo a broker admin's suspension."""
    if suspended_by == "broker-admin" and role != "broker-admin":
        return ("A broker administrator suspended this endpoint: only a broker "
                "administrator can resume it.")
    return None


def needs_reason(action: str) -> bool:
    return action in ("reject", "suspend")


def changed_fields(current: Mapping[str, Any], update: Mapping[str, Any],
                   *, credentials_given: bool) -> list[str]:
    """Names of the details ``update`` changes (``credentials`` when new ones are given)."""
    changed = [k for k in DETAILS if k in update and update[k] != current.get(k)]
    if credentials_given:
        changed.append("credentials")
    return changed


def coverage_widens(old: Sequence[str], new: Sequence[str]) -> bool:
    """Whether ``new`` reaches anyone ``old`` did not: it gains an area, or
    becomes national. Nothing is wider than national."""
    if NATIONAL in old:
        return False
    return NATIONAL in new or bool(set(new) - set(old))


def widening(current: Mapping[str, Any], update: Mapping[str, Any],
             changed: Iterable[str]) -> list[str]:
    """The changed fields that widen who receives children's identities: coverage
    gaining an area or becoming national; any new name, code, protocol, URL or
    credentials (an endpoint named after another authority is answered as that
    authority). Removing areas, a new time limit or contact do not widen; a policy
    widens when it holds back less than before (``policy.shares_more``)."""
    widened = []
    for name in changed:
        if name == "coverage":
            if coverage_widens(current["coverage"], update["coverage"]):
                widened.append(name)
        elif name == "policy":
            if shares_more(current.get("policy"), update["policy"]):
                widened.append(name)
        elif name in WIDENING:
            widened.append(name)
    return widened


def status_after_change(status: str, changed: Sequence[str], widened: Sequence[str]) -> str:
    """A widening change sends the endpoint back to ``pending`` until a broker
    admin approves it (as does any change to a rejected endpoint, which
    resubmits it); any other change keeps the status."""
    if status == "rejected" and changed:
        return "pending"
    if widened:
        return "pending"
    return status


def change_record(current: Mapping[str, Any], update: Mapping[str, Any],
                  changed: Iterable[str]) -> dict[str, Any]:
    """For the audit trail: each changed detail's old and new value; credentials
    only as ``"changed"``, never their values."""
    record: dict[str, Any] = {}
    for name in changed:
        if name == "credentials":
            record[name] = "changed"
        else:
            record[name] = {"old": current.get(name), "new": update[name]}
    return record


def _areas(codes: Iterable[str]) -> str:
    codes = sorted(codes)
    shown = ", ".join(codes[:AREAS_SHOWN])
    return shown + (f" and {len(codes) - AREAS_SHOWN} more" if len(codes) > AREAS_SHOWN else "")


def widening_reason(current: Mapping[str, Any], update: Mapping[str, Any],
                    widened: Iterable[str], earlier: str | None = None) -> str:
    """What a broker admin is asked to approve, in words (the status reason):
    each widening, with the old value; added to an earlier such reason."""
    parts = []
    for name in widened:
        if name == "coverage":
            old, new = current["coverage"], update["coverage"]
            parts.append(f"coverage widened to national (was {_areas(old)})" if NATIONAL in new
                         else f"coverage gains {_areas(set(new) - set(old))}")
        elif name == "credentials":
            parts.append("credentials changed")
        elif name == "policy":
            parts.append("policy shares more: " + "; ".join(
                shares_more(current.get("policy"), update["policy"])))
        else:
            label = "URL" if name == "url" else name
            parts.append(f'{label} changed from "{current.get(name)}" to "{update[name]}"')
    reason = "; ".join(parts)
    if earlier and earlier.startswith(NEEDS_APPROVAL):
        reason = f"{earlier.removesuffix('.')}; then {reason}"
    else:
        reason = NEEDS_APPROVAL + reason
    return reason[:REASON_LIMIT - 1] + "…" if len(reason) > REASON_LIMIT else reason + "."


def connection_target(protocol: str, url: str, credentials: str | None) -> str:
    """Names what a conformance check tested: the protocol, URL and the stored
    (encrypted) credentials. A check is of the endpoint as it is now when its
    target equals the endpoint's."""
    raw = json.dumps([protocol, url, credentials], separators=(",", ":"))
    return hashlib.sha256(raw.encode()).hexdigest()


def details_version(row: Mapping[str, Any]) -> str:
    """Names an endpoint's details and stored credentials as they are: a broker
    admin approves the version it was shown, and a change in between refuses it."""
    raw = json.dumps([row.get(k) for k in DETAILS] + [row["credentials"]], separators=(",", ":"))
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


def approval_problem(last_check: Mapping[str, Any] | None, target: str) -> str | None:
    """Why an endpoint cannot be approved now (None when it can): it must have
    passed a conformance check of its protocol, URL and credentials as they are."""
    if last_check is None:
        return ("It has never been tested: run \"Test this endpoint\" and approve it "
                "when it passes.")
    if not last_check["passed"]:
        return ("Its last test failed: it can be approved only after a test passes. "
                "Run \"Test this endpoint\" again when it is put right.")
    if last_check.get("target") != target:
        return ("Its address, protocol or credentials changed since it last passed: run "
                "\"Test this endpoint\" again and approve it when it passes.")
    return None
