"""The registry pages only an authority admin uses: register its own endpoint,
change its details (a change that widens who receives children's identities
goes back to pending: ``rules.widening``),
create a SMART Backend Services key pair for a FHIR endpoint. The same registry
services as the API decide; see ``registry_pages``.

Credentials typed on the change form are merged onto the stored ones
(``registry_smart.with_form_credentials``): a blank field keeps what is stored,
so saving the form never drops a private key the page does not show."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Mapping
from typing import Any

from flask import abort, flash, g, redirect, request, url_for
from marshmallow import ValidationError

from adapters.smart_auth import key_update, retire_old_key, stage_new_key
from federator.auth.access import require_page_roles
from federator.inputs import form_text_errors
from federator.registry.schemas import CREDENTIAL_FIELDS, EndpointSchema, protocols, safety_errors
from federator.registry.secrets import CredentialsKeyError
from federator.web.blueprint import PageBlueprint, render_page
from federator.web.forms import csrf_refused, error_summary
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
    endpoint_page,
    federator_services,
    guard_action,
    run_change,
)
from federator.web.registry_smart import (
    AT_ONCE,
    FHIR,
    KEY_CHOICES,
    OVERLAP,
    KeyPairForm,
    method_of,
    stored_credentials,
    utc_text,
    when_choices,
    with_form_credentials,
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
    if text := form_text_errors(form):
        return _endpoint_form(form, status=422, action=action, heading=heading,
                              general=_show_errors(form, text))
    services = federator_services()
    data = {"id": authority, **payload_from_form(form.data)}
    try:
        loaded = dict(EndpointSchema().load(data))
    except ValidationError as e:
        general = _show_errors(form, messages_of(e))
        return _endpoint_form(form, status=422, action=action, heading=heading, general=general)
    loaded = with_form_credentials(loaded, None, {}, form.auth.data)
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
        with contextlib.suppress(CredentialsKeyError):  # the page says so when saving
            form.auth.data = method_of(stored_credentials(federator_services().registry,
                                                          current))
        return _endpoint_form(form, action=action, heading=heading, current=current)
    form = EndpointForm()
    csrf_refused(form)
    if text := form_text_errors(form):
        return _endpoint_form(form, status=422, action=action, heading=heading,
                              current=current, general=_show_errors(form, text))
    try:
        update = dict(EndpointSchema().load(payload_from_form(form.data), partial=True))
    except ValidationError as e:
        general = _show_errors(form, messages_of(e))
        return _endpoint_form(form, status=422, action=action, heading=heading,
                              current=current, general=general)
    try:
        stored = stored_credentials(federator_services().registry, current) \
            if current["protocol"] == FHIR else {}
    except CredentialsKeyError:
        return _endpoint_form(form, status=409, action=action, heading=heading,
                              current=current, general=[UNREADABLE])
    update = with_form_credentials(update, current["protocol"], stored, form.auth.data)
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
        " They change who receives children's details, so they need approval: the endpoint "
        "is pending until the broker's administrators approve it." if after["status"] ==
        "pending" and current["status"] != "pending" else ""))
    return redirect(url_for("web_registry.endpoint", endpoint_id=endpoint_id), 303)


@blp.route("/registry/endpoints/<endpoint_id>/key-pair", methods=["GET", "POST"])
def key_pair(endpoint_id: str) -> Any:
    """Create a SMART Backend Services key pair for a FHIR endpoint: the private
    key stored encrypted with its credentials, the public JWKS shown on the
    endpoint's page. The page says first what the new key replaces; a stored
    key may keep signing for the overlap (``FEDERATOR_KEY_OVERLAP_S``)."""
    current = guard_action("change", endpoint_id)
    if current["protocol"] != FHIR:
        abort(404)
    services = federator_services()
    form = KeyPairForm()
    overlap_s = services.settings.key_overlap_s
    form.when.choices = when_choices(overlap_s)
    try:
        stored = stored_credentials(services.registry, current)
    except CredentialsKeyError:
        return _key_pair_page(current, form, {}, status=409, general=[UNREADABLE])
    if request.method == "GET":
        return _key_pair_page(current, form, stored)
    csrf_refused(form)
    if form.alg.data not in dict(KEY_CHOICES):
        form.alg.errors = ["Choose the kind of key"]
    if stored.get("private_key") and form.when.data not in (OVERLAP, AT_ONCE):
        form.when.errors = ["Choose when the new key signs"]
    if form.alg.errors or form.when.errors:
        return _key_pair_page(current, form, stored, status=422)
    alg = str(form.alg.data)
    if stored.get("private_key") and form.when.data == OVERLAP:
        updated = stage_new_key(stored, alg=alg, overlap_s=overlap_s, now=time.time())
    else:
        updated = key_update(stored, new_key=True, alg=alg) or {}
    staged = "next_from" in updated
    refused = run_change(lambda: services.registry.change(
        endpoint_id, {"credentials": updated}, actor(), services.trail, reapprove=not staged))
    if refused:
        return _key_pair_page(current, form, stored, status=409, general=[refused])
    flash((f"A new key is published next to the key in use, which signs until "
           f"{utc_text(updated['next_from'])}. Copy the key set below (both keys) into your "
           "FHIR server's registration for the broker's client, then choose "
           "\"Use the new key now\"." if staged else
           "A new key pair is made. Copy its public JWKS below into your FHIR server's "
           "registration for the broker's client") + (
              "" if staged else "." if updated.get("client_id") else
              ", then enter the client ID it gives you under Change details."))
    return redirect(url_for("web_registry.endpoint", endpoint_id=endpoint_id,
                            _anchor="smart-key"), 303)


@blp.route("/registry/endpoints/<endpoint_id>/key-pair/retire", methods=["POST"])
def retire_key(endpoint_id: str) -> Any:
    """End the overlap: the new key signs from now on, the old one is no longer
    published (the authority says its FHIR server has the new key)."""
    current = guard_action("change", endpoint_id)
    if current["protocol"] != FHIR:
        abort(404)
    csrf_refused(KeyPairForm())
    services = federator_services()
    try:
        updated = retire_old_key(stored_credentials(services.registry, current))
    except CredentialsKeyError:
        updated, problem = None, UNREADABLE
    else:
        problem = None if updated else "No new key is waiting: nothing was changed."
    refused = problem or run_change(lambda: services.registry.change(
        endpoint_id, {"credentials": updated}, actor(), services.trail, reapprove=False))
    if refused:
        return endpoint_page(current, problem=refused, status=409)
    flash("The new key signs from now on; the old key is no longer published.")
    return redirect(url_for("web_registry.endpoint", endpoint_id=endpoint_id,
                            _anchor="smart-key"), 303)


def _key_pair_page(current: Mapping[str, Any], form: KeyPairForm, stored: Mapping[str, str],
                   *, status: int = 200, general: list[str] | None = None) -> Any:
    errors = [{"text": field.errors[0], "href": f"#{field.id}"}
              for field in (form.alg, form.when) if field.errors]
    errors += [{"text": text, "href": "#alg"} for text in general or []]
    heading = f"Create a key pair for {current['name']}"
    return render_page("web/registry/key_pair.html", status, e=current, form=form,
                       errors=errors, heading=heading,
                       title=f"Error: {heading}" if errors else heading,
                       has_key=bool(stored.get("private_key")),
                       has_secret=bool(stored.get("client_secret")),
                       action=url_for("web_registry_authority.key_pair",
                                      endpoint_id=current["id"]))


UNREADABLE = ("The stored credentials cannot be read: this broker's FEDERATOR_CREDENTIALS_KEY "
              "does not open them. Nothing was saved.")


def messages_of(error: ValidationError) -> dict[str, Any]:
    return error.messages if isinstance(error.messages, dict) else {"form": error.messages}


