"""The registry pages only an authority admin uses: register its own endpoint,
change its details (a new URL, protocol or credentials go back to pending).
The same registry services as the API decide; see ``registry_pages``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import abort, flash, g, redirect, request, url_for
from marshmallow import ValidationError

from federator.auth.access import require_page_roles
from federator.registry.schemas import CREDENTIAL_FIELDS, EndpointSchema, protocols, safety_errors
from federator.web.blueprint import PageBlueprint, render_page
from federator.web.forms import error_summary
from federator.web.registry_forms import (
    FIELD_ORDER,
    EndpointForm,
    form_values,
    friendly,
    payload_from_form,
    place_errors,
    protocol_choices,
)
from federator.web.registry_pages import (
    actor,
    csrf_refused,
    federator_services,
    guard_action,
    run_change,
)

blp = require_page_roles(
    PageBlueprint("web_registry_authority", __name__, template_folder="templates"),
    "authority-admin")


def _endpoint_form(form: EndpointForm, *, status: int = 200, action: str,
                   heading: str, current: Mapping[str, Any] | None = None,
                   general: list[str] | None = None) -> Any:
    form.protocol.choices = protocol_choices(protocols())
    summary = error_summary(form, FIELD_ORDER)
    summary += [{"text": text, "href": "#name"} for text in general or []]
    title = f"Error: {heading}" if summary else heading
    return render_page("web/registry/form.html", status, form=form, errors=summary,
                       heading=heading, action=action, current=current, title=title,
                       credential_fields=CREDENTIAL_FIELDS)


def _show_errors(form: EndpointForm, errors: Mapping[str, Any]) -> list[str]:
    placed = friendly(place_errors(errors))
    for name, messages in placed.items():
        field = getattr(form, name, None)
        if field is not None and name != "form":
            field.errors = messages
    return placed.get("form", [])


@blp.route("/registry/endpoints/new", methods=["GET", "POST"])
def register() -> Any:
    authority = g.principal.authority
    if g.role != "authority-admin" or not authority:
        abort(403)
    heading = "Register your authority's endpoint"
    action = url_for("web_registry_authority.register")
    form = EndpointForm()
    if request.method == "GET":
        if federator_services().registry.get(authority) is not None:
            return redirect(url_for("web_registry.endpoint", endpoint_id=authority))
        return _endpoint_form(form, action=action, heading=heading)
    csrf_refused(form)
    services = federator_services()
    data = {"id": authority, **payload_from_form(form.data)}
    try:
        loaded = dict(EndpointSchema().load(data))
    except ValidationError as e:
        general = _show_errors(form, messages_of(e))
        return _endpoint_form(form, status=422, action=action, heading=heading, general=general)
    errors = safety_errors(loaded, services.registry.guard)
    if errors:
        general = _show_errors(form, errors)
        return _endpoint_form(form, status=422, action=action, heading=heading, general=general)
    refused = run_change(lambda: services.registry.register(loaded, actor(), services.trail))
    if refused:
        return _endpoint_form(form, status=409, action=action, heading=heading,
                              general=[refused])
    flash("Your endpoint is registered. It is pending until the broker's administrators "
          "approve it.")
    return redirect(url_for("web_registry.endpoint", endpoint_id=authority), 303)


@blp.route("/registry/endpoints/<endpoint_id>/change", methods=["GET", "POST"])
def change(endpoint_id: str) -> Any:
    current = guard_action("change", endpoint_id)
    heading = f"Change {current['name']}"
    action = url_for("web_registry_authority.change", endpoint_id=endpoint_id)
    if request.method == "GET":
        form = EndpointForm(data=form_values(current))
        return _endpoint_form(form, action=action, heading=heading, current=current)
    form = EndpointForm()
    csrf_refused(form)
    try:
        update = dict(EndpointSchema().load(payload_from_form(form.data), partial=True))
    except ValidationError as e:
        general = _show_errors(form, messages_of(e))
        return _endpoint_form(form, status=422, action=action, heading=heading,
                              current=current, general=general)
    merged = {**current, **update}
    new_url = update.get("url", current["url"]) != current["url"]
    new_protocol = update.get("protocol", current["protocol"]) != current["protocol"]
    errors = safety_errors(merged, federator_services().registry.guard, check_url=new_url,
                           check_credentials=bool(update.get("credentials")) or (
                               new_protocol and not current["credentials_stored"]))
    if errors:
        general = _show_errors(form, errors)
        return _endpoint_form(form, status=422, action=action, heading=heading,
                              current=current, general=general)
    services = federator_services()
    refused = run_change(lambda: services.registry.change(endpoint_id, update, actor(),
                                                       services.trail))
    if refused:
        return _endpoint_form(form, status=409, action=action, heading=heading,
                              current=current, general=[refused])
    after = services.registry.describe_one(endpoint_id) or current
    flash("Your changes are saved." + (
        " The new address, protocol or credentials need approval: the endpoint is pending "
        "until the broker's administrators approve it." if after["status"] == "pending"
        and current["status"] != "pending" else ""))
    return redirect(url_for("web_registry.endpoint", endpoint_id=endpoint_id), 303)


def messages_of(error: ValidationError) -> dict[str, Any]:
    return error.messages if isinstance(error.messages, dict) else {"form": error.messages}


