"""The registry's pages: an authority admin registers and runs its own endpoint;
a broker admin sees every endpoint and approves or rejects them.

Three blueprints, so the access table says who may open what: this one (both
admin roles: the list, one endpoint, "Test this endpoint", suspend/resume),
``registry_authority_pages`` (authority admins: register, change details) and
``registry_approval_pages`` (broker admins: approve, reject).

Views translate between forms and the registry's services (the same ones the
API calls: ``EndpointSchema``, ``safety_errors``, ``rules.authorise``,
``Registry``, ``check_and_record``); they hold no rules of their own.
An authority admin asking for another authority's endpoint gets the same
404 as for one that does not exist.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from flask import abort, current_app, flash, g, get_flashed_messages, redirect, request, url_for

from federator.audit.trail import AuditUnavailable
from federator.auth.access import require_page_roles
from federator.inputs import form_text_errors
from federator.registry.conformance import check_and_record
from federator.registry.rules import TRANSITIONS, Refused, authorise, needs_reason
from federator.registry.schemas import ENDPOINT_ID
from federator.registry.secrets import CredentialsKeyError
from federator.web.blueprint import PageBlueprint, add_nav_entry, render_page
from federator.web.forms import csrf_refused
from federator.web.registry_forms import (
    ReviewForm,
)
from federator.web.registry_smart import key_panel

blp = require_page_roles(
    PageBlueprint("web_registry", __name__, template_folder="templates"),
    "authority-admin", "broker-admin")
add_nav_entry("web_registry.endpoints", "Endpoints", "authority-admin", "broker-admin")

ACTIONS = ("approve", "reject", "suspend", "resume")
ACTION_WORDS = {
    "approve": ("Approve", "Lookups will be sent to it from now on."),
    "reject": ("Reject", "Say why, so the authority can put it right."),
    "suspend": ("Suspend", "No lookups are sent to it until it is resumed. Say why."),
    "resume": ("Resume", "Lookups will be sent to it again."),
}
STATUS_TAGS = {"pending": "yellow", "active": "green", "suspended": "orange",
               "rejected": "red"}


def federator_services() -> Any:
    return current_app.extensions["federator"]


def actor() -> dict[str, Any]:
    return dict(g.principal.actor(g.role))


def allowed(action: str, endpoint_id: str) -> bool:
    try:
        authorise(action, g.role, g.principal.authority, endpoint_id)
    except Refused:
        return False
    return True


def guard_action(action: str, endpoint_id: str) -> dict[str, Any]:
    """The endpoint, if this user may take ``action`` on it; else a 403/404 page."""
    try:
        authorise(action, g.role, g.principal.authority, endpoint_id)
    except Refused as e:
        abort(e.status)
    if not ENDPOINT_ID.match(endpoint_id):  # no such endpoint (nor a query with a NUL)
        abort(404)
    shown = federator_services().registry.describe_one(endpoint_id)
    if shown is None:
        abort(404)
    return shown


def run_change(run: Callable[[], Any]) -> str | None:
    """Run a registry change; its refusal as words (None when done)."""
    try:
        run()
    except Refused as e:
        if e.status in (403, 404):
            abort(e.status)
        return e.message
    except AuditUnavailable:
        abort(503)
    except CredentialsKeyError:
        return ("This broker cannot store credentials: FEDERATOR_CREDENTIALS_KEY is not set. "
                "Nothing was saved.")
    return None


def _tag(status: str) -> dict[str, str]:
    return {"text": status.capitalize(), "classes": f"govuk-tag--{STATUS_TAGS.get(status, 'grey')}"}


def status_in_words(status: str, *, healthy: bool | None, breaker: str | None
                    ) -> dict[str, str]:
    """The registry's status with what the broker sees of the endpoint now: an
    active endpoint that is not answering is not shown as "Active" in green."""
    if status != "active":
        return _tag(status)
    if breaker == "open":
        return {"text": "Active, not being asked", "classes": "govuk-tag--red",
                "words": "It failed several lookups in a row, so lookups skip it for a "
                         "short while (its circuit breaker is open) and say it was not asked."}
    if breaker == "probe":
        return {"text": "Active, being tried again", "classes": "govuk-tag--orange",
                "words": "It failed recently; the next lookup tries it again."}
    if healthy is False:
        return {"text": "Active, last health check failed", "classes": "govuk-tag--red",
                "words": "Lookups are still sent to it."}
    return _tag(status)


# --------------------------------------------------------------------------
# The list
# --------------------------------------------------------------------------

@blp.route("/registry/endpoints")
def endpoints() -> Any:
    registry = federator_services().registry
    if g.role == "broker-admin":
        rows = registry.describe()
    else:
        authority = g.principal.authority
        rows = registry.describe(authority) if authority else []
    order = {"pending": 0, "active": 1, "suspended": 2, "rejected": 3}
    rows.sort(key=lambda r: (order.get(r["status"], 9), r["id"]))
    health = federator_services().registry.health
    breakers = federator_services().lookups.breakers

    def tag(status: str, endpoint_id: str) -> dict[str, str]:
        """As on the endpoint's page: an active endpoint not answering says so."""
        if status != "active":
            return _tag(status)
        probes = health.recent(endpoint_id, "probe", limit=1)
        return status_in_words(status, healthy=probes[0]["ok"] if probes else None,
                               breaker=breakers.peek(endpoint_id) if breakers else None)

    return render_page("web/registry/list.html", rows=rows, tag=tag,
                       can_register=g.role == "authority-admin" and not rows
                       and bool(g.principal.authority),
                       authority=g.principal.authority, title="Endpoints",
                       notices=get_flashed_messages())


# --------------------------------------------------------------------------
# One endpoint: status, health, conformance; actions
# --------------------------------------------------------------------------

@blp.route("/registry/endpoints/<endpoint_id>")
def endpoint(endpoint_id: str) -> Any:
    shown = guard_action("view", endpoint_id)
    return _endpoint_page(shown)


def _endpoint_page(shown: Mapping[str, Any], *, check: Mapping[str, Any] | None = None,
                   problem: str | None = None, status: int = 200) -> Any:
    registry = federator_services().registry
    report = registry.health.report(shown["id"], shown["status"], hours=24)
    breakers = federator_services().lookups.breakers
    tag = status_in_words(shown["status"], healthy=report["healthy"],
                          breaker=breakers.peek(shown["id"]) if breakers else None)
    actions = [a for a in ACTIONS if allowed(a, shown["id"]) and _applies(a, shown["status"])]
    return render_page(
        "web/registry/endpoint.html", status, e=shown, tag=tag,
        health=report, check=check, problem=problem, actions=actions,
        action_words=ACTION_WORDS, review_url=review_url, can_change=allowed("change", shown["id"]),
        can_check=allowed("check", shown["id"]), title=shown["name"],
        smart=key_panel(registry, shown), notices=get_flashed_messages())


endpoint_page = _endpoint_page  # the page again, with a problem (registry_authority_pages)


def _applies(action: str, status: str) -> bool:
    return status in TRANSITIONS[action][0]


@blp.route("/registry/endpoints/<endpoint_id>/check", methods=["POST"])
def check(endpoint_id: str) -> Any:
    """Test this endpoint: the conformance checks now, check by check."""
    shown = guard_action("check", endpoint_id)
    csrf_refused(ReviewForm())
    services = federator_services()
    found = services.registry.get(endpoint_id)
    if found is None:
        abort(404)
    try:
        result = check_and_record(services.registry, services.keys, services.trail, found,
                                  actor())
    except AuditUnavailable:
        abort(503)
    shown = services.registry.describe_one(endpoint_id) or shown
    return _endpoint_page(shown, check=result)


@blp.route("/registry/endpoints/<endpoint_id>/<any(suspend, resume):action>",
           methods=["GET", "POST"])
def review(endpoint_id: str, action: str) -> Any:
    return review_page(endpoint_id, action)


def review_url(endpoint_id: str, action: str) -> str:
    name = "web_registry_approval.review" if action in ("approve", "reject") \
        else "web_registry.review"
    return url_for(name, endpoint_id=endpoint_id, action=action)


def review_page(endpoint_id: str, action: str) -> Any:
    """Confirm an action (with its reason), then take it."""
    shown = guard_action(action, endpoint_id)
    form = ReviewForm()
    if request.method == "POST":
        csrf_refused(form)
        if text := form_text_errors(form):
            form.reason.errors = text.get("reason") or [
                "This page was sent back changed: open it again and confirm"]
            return _review_page(shown, action, form, 422)
        reason = (form.reason.data or "").strip()
        if needs_reason(action) and not reason:
            form.reason.errors = [f"Say why you {action} this endpoint"]
            return _review_page(shown, action, form, 422)
        services = federator_services()
        seen = form.seen.data if action == "approve" else None
        refused = run_change(lambda: services.registry.transition(
            endpoint_id, action, reason or None, actor(), services.trail,
            version=seen or None))
        if refused:  # shown as it is now, with why it was not done
            shown = services.registry.describe_one(endpoint_id) or shown
        if refused:
            return _review_page(shown, action, form, 409, refused)
        flash({"approve": "Approved: the endpoint is active.",
               "reject": "Rejected: the authority can see your reason.",
               "suspend": "Suspended: no lookups are sent to it.",
               "resume": "Resumed: the endpoint is active."}[action])
        return redirect(url_for("web_registry.endpoint", endpoint_id=endpoint_id), 303)
    if not _applies(action, shown["status"]):
        return _endpoint_page(shown, status=409,
                              problem=f"You cannot {action} an endpoint that is "
                                      f"{shown['status']}.")
    return _review_page(shown, action, form)


def _review_page(shown: Mapping[str, Any], action: str, form: ReviewForm, status: int = 200,
                 problem: str | None = None) -> Any:
    verb, text = ACTION_WORDS[action]
    form.seen.data = shown["version"]  # what this page shows is what is approved
    errors = [{"text": form.reason.errors[0], "href": "#reason"}] if form.reason.errors else []
    if problem:
        errors.append({"text": problem, "href": "#reason"})
    heading = f"{verb} {shown['name']}"
    return render_page("web/registry/review.html", status, e=shown, form=form, action=action,
                       review_url=review_url,
                       verb=verb, text=text, errors=errors, needs_reason=needs_reason(action),
                       heading=heading, title=f"Error: {heading}" if errors else heading)
