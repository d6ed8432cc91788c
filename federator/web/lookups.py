"""The practitioner's pages: the lookup form, its progress, the results, and
"My recent lookups". Views translate; the lookup service decides.

``POST /lookups/new`` answers a plain form post with the whole results page
(no JavaScript needed). With ``Accept: text/event-stream`` (our static JS) it
streams ``progress`` events as authorities answer, then one ``result`` event
holding the results HTML. Nothing of the answer is kept once it is sent.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from flask import Response, abort, current_app, g, request, stream_with_context
from marshmallow import ValidationError

from federator.audit.trail import AuditUnavailable
from federator.auth.access import require_page_roles
from federator.inputs import form_text_errors
from federator.lookup.budget import OverBudget
from federator.lookup.followups import NotYours, RetryRefused
from federator.lookup.schemas import LookupRequestSchema
from federator.lookup.service import COMPLETION_UNRECORDED
from federator.names import ANSWERED, NO_MATCH, NOT_ANSWERED
from federator.state import StateUnavailable
from federator.web.blueprint import PageBlueprint, render_page
from federator.web.combined import combine, open_answer, sign_answer
from federator.web.forms import (
    DATE_MESSAGE,
    LookupForm,
    csrf_refused,
    error_summary,
    form_errors,
    payload_from_form,
)
from federator.web.recent import outcome_words, recent_lookups
from federator.web.results import results_view
from federator.web.wording import govuk_messages

log = logging.getLogger(__name__)

AUDIT_DOWN = ("The audit trail cannot be written just now, so nothing was sent. "
              "Try again in a minute: your answers are still in the form.")
STATE_DOWN = ("The service's shared state cannot be reached just now, so its limits and "
              "checks on failing authorities cannot be applied. Nothing was sent. Try "
              "again in a minute: your answers are still in the form.")

blp = require_page_roles(PageBlueprint("web_lookups", __name__, template_folder="templates"),
                         "practitioner")

FIELD_ORDER = ["nhs_number", "given_name", "family_name", "date_of_birth", "postcode",
               "previous_postcodes", "also_ask", "areas", "purpose", "basis_type", "given_by",
               "given_on", "consent_reference", "covers_sensitive_services",
               "justification", "power", "statutory_reference", "include_past"]
DATE_FIELDS = {"date_of_birth": ("child", "Date of birth"), "given_on": ("basis", "Consent date")}


@blp.after_request
def _no_store(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    return response


def _authorities() -> dict[str, Any]:
    """The active endpoints by id: the "another authority" choices."""
    return {e.id: e for e in current_app.extensions["federator"].registry.all()
            if e.status == "active"}


def _offer_authorities(form: LookupForm) -> None:
    named = sorted(((e.id, e.name) for e in _authorities().values()),
                   key=lambda c: c[1].lower())
    form.also_ask.choices = [("", "Choose an authority"), *named]


def _also_ask(form: LookupForm, payload: dict[str, Any]) -> list[str]:
    """The chosen authority's areas added to the payload's; the field's error if
    the choice is not an active authority."""
    chosen = (form.also_ask.data or "").strip()
    if not chosen:
        return []
    endpoint = _authorities().get(chosen)
    if endpoint is None:
        return ["Choose an authority from the list"]
    payload["areas"] = sorted(set(payload.get("areas") or []) | set(endpoint.coverage))
    return []


def _form_page(form: LookupForm, status: int = 200, general: list[str] | None = None) -> Any:
    _offer_authorities(form)
    summary = error_summary(form, FIELD_ORDER)
    summary += [{"text": text, "href": "#purpose"} for text in general or []]
    title = "Find who is working with a child"
    only = request.form.get("only_authority") if request.method == "POST" else None
    names = current_app.extensions["federator"].lookups.endpoint_names() if only else {}
    return render_page("web/lookup_form.html", status, no_store=True, form=form,
                       errors=summary, title=f"Error: {title}" if summary else title,
                       only_authority={"id": only, "name": names.get(only, only)}
                       if only else None)


@blp.route("/lookups/new", methods=["GET", "POST"])
def new_lookup() -> Any:
    form = LookupForm()
    if request.method == "GET":
        return _form_page(form)
    return _lookup_from_form(form)


@blp.route("/lookups/again", methods=["POST"])
def prefill_lookup() -> Any:
    """A possible match's "add details and ask again": the form filled in with what
    the browser posts back, asking only that authority (``only_authority``)."""
    form = LookupForm()
    _drop_partial_dates(form)  # a date not given comes back as no inputs at all
    return _form_page(form)


@blp.route("/lookups/<lookup_id>/retry", methods=["POST"])
def retry_lookup(lookup_id: str) -> Any:
    """The results page's "ask again": the same form values, posted back by the
    browser (the broker kept nothing), asking only those that did not answer."""
    return _lookup_from_form(LookupForm(), retry_of=lookup_id)


def _lookup_from_form(form: LookupForm, retry_of: str | None = None) -> Any:
    csrf_refused(form)
    _drop_partial_dates(form)  # a post without the three date inputs (not from our page)
    service = current_app.extensions["federator"].lookups
    payload = payload_from_form(form.data)
    if request.form.get("only_authority"):
        payload["authorities"] = [request.form["only_authority"]]
    also = _also_ask(form, payload)
    loaded, errors, placed = _checked(form, payload)
    if also:
        errors["also_ask"], placed["also_ask"] = also, also
    if errors:
        for name, messages in placed.items():
            field = getattr(form, name, None)
            if field is not None and name != "form":
                field.errors = govuk_messages(name, messages)
        try:
            service.refuse(g.principal, g.role, errors, payload)
        except AuditUnavailable:
            abort(503)
        except OverBudget as e:
            return _too_many(form, e)
        return _form_page(form, 422, placed.get("form"))
    try:
        events = (service.run(loaded, g.principal, role=g.role) if retry_of is None
                  else service.retry(loaded, g.principal, retry_of, role=g.role))
    except OverBudget as e:
        return _too_many(form, e)
    except NotYours:
        abort(404)
    except RetryRefused as e:
        return _form_page(form, 409, [str(e)])
    except AuditUnavailable:
        return _form_page(form, 503, [AUDIT_DOWN])
    except StateUnavailable:
        return _form_page(form, 503, [STATE_DOWN])
    if request.accept_mimetypes.best_match(["text/html", "text/event-stream"]) \
            == "text/event-stream":
        response = Response(
            stream_with_context(_progress(events, len(events.authorities), loaded)),
            mimetype="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})
        # The browser may leave before the stream starts, or in the middle: the
        # server closes the response either way, and closing the events finishes
        # the lookup and writes lookup.completed.
        response.call_on_close(events.close)
        return response
    try:
        result = events.result()
    except AuditUnavailable:
        return _form_page(form, 503, [COMPLETION_UNRECORDED])
    return _results_page(result, loaded)


def _too_many(form: LookupForm, error: OverBudget) -> Any:
    """Beyond the budget: the form again, its answers kept, the reason in the
    error summary (not a bare error page that loses what was typed)."""
    body, status, headers = _form_page(form, 429, [str(error)])
    return body, status, {**headers, "Retry-After": str(error.retry_after)}


def _drop_partial_dates(form: LookupForm) -> None:
    for name in DATE_FIELDS:
        field = getattr(form, name)
        if field.raw_data is not None and len(field.raw_data) != 3:
            field.raw_data = None


def _checked(form: LookupForm, payload: dict[str, Any]
             ) -> tuple[dict[str, Any], dict[str, Any], dict[str, list[str]]]:
    """The loaded request, and every error: by request field (for the refusal's
    record) and by form field (for the page)."""
    errors: dict[str, Any] = {}
    loaded: dict[str, Any] = {}
    try:
        loaded = LookupRequestSchema().load(payload)
    except ValidationError as e:
        errors = dict(e.messages) if isinstance(e.messages, dict) else {"form": e.messages}
    if not errors:
        errors = current_app.extensions["federator"].lookups.problems(loaded)
    placed = form_errors(errors, (form.basis_type.data or "").strip())
    text = form_text_errors(form)  # a field's own rule (e.g. a control character)
    placed.update(text)
    errors.update(text)
    for name in DATE_FIELDS:
        if not getattr(form, name).errors:
            continue
        section, label = DATE_FIELDS[name]
        placed[name] = [DATE_MESSAGE.format(label)]
        errors.setdefault(section, {})
        if isinstance(errors[section], dict):
            errors[section][name] = ["not a date"]
    return loaded, errors, placed


def _results_page(result: dict[str, Any], request_: dict[str, Any]) -> Any:
    follows = (request.view_args or {}).get("lookup_id") \
        if request.endpoint == "web_lookups.retry_lookup" else None
    secret = current_app.secret_key or ""
    first = open_answer(secret, request.form.get("first_answer", ""),
                        actor_id=g.principal.id, lookup_id=follows) if follows else None
    if first is not None:  # the answer asked again, signed by this broker
        result = combine(first, result)
    again = ask_again(result)
    return render_page("web/results.html", no_store=True,
                       view=results_view(result, _registry_contacts(result)),
                       asked=_asked(request_), title=_results_title(result),
                       asked_by=g.principal, answered_at=datetime.now(UTC),
                       resend=_resend(), follows=follows, combined=first is not None,
                       first_answer=sign_answer(secret, result, g.principal.id)
                       if again["can_retry"] else "", **again)


def _registry_contacts(result: dict[str, Any]) -> dict[str, str]:
    """The registry's contact for each authority that did not answer."""
    missing = {a["id"] for a in result.get("authorities") or []
               if a.get("outcome") not in ANSWERED}
    if not missing:
        return {}
    return {e.id: e.contact for e in current_app.extensions["federator"].registry.all()
            if e.id in missing and e.contact}


def ask_again(result: dict[str, Any]) -> dict[str, Any]:
    """Whether the page offers "ask again" (some authority did not answer), and
    the authorities whose notice came with ``no_match`` (a possible match) that
    can be asked alone with more details."""
    outcomes = {a["id"]: a.get("outcome") for a in result.get("authorities") or []}
    names = {a["id"]: a.get("name") or a["id"] for a in result.get("authorities") or []}
    possible = [{"id": n["authority"], "name": names[n["authority"]]}
                for n in result.get("notices") or []
                if n.get("authority") in outcomes and outcomes[n["authority"]] == NO_MATCH]
    return {"can_retry": any(o in NOT_ANSWERED for o in outcomes.values()),
            "possible": possible}


def _resend() -> list[tuple[str, str]]:
    """The form values as posted, for the results page's "ask again" forms: the
    browser sends the child again; the broker keeps nothing between requests."""
    return [(name, value) for name, values in request.form.lists()
            if name not in ("csrf_token", "only_authority", "first_answer")
            for value in values]


def _results_title(result: dict[str, Any]) -> str:
    return ("Who is working with this child" if result.get("complete")
            else "Who is working with this child (incomplete answer)")


def _asked(request_: dict[str, Any]) -> dict[str, Any]:
    child = request_["child"]
    dob = child.get("date_of_birth")
    name = " ".join(p for p in (child.get("given_name"), child.get("family_name")) if p)
    return {"nhs_number": child.get("nhs_number"), "name": name,
            "date_of_birth": f"{dob.day} {dob:%B %Y}" if dob else None,
            "postcodes": ", ".join(child.get("postcodes") or []),
            "purpose": request_["purpose"], "basis_type": request_["basis"]["type"],
            "include_past": bool(request_.get("include_past"))}


def _event(kind: str, data: Any) -> str:
    return f"event: {kind}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


def _progress(events: Iterator[tuple[str, dict[str, Any]]], total: int | None,
              request_: dict[str, Any]) -> Iterator[str]:
    answered = 0
    try:
        for kind, data in events:
            if kind == "authority":
                answered += 1
                yield _event("progress", {"answered": answered, "total": total,
                                          "name": data.get("name"),
                                          "outcome": data.get("outcome")})
            elif kind == "result":
                body, _, _ = _results_page(data, request_)
                yield _event("result", {"html": body, "title": _results_title(data)})
    except AuditUnavailable:  # sent, but its answer could not be recorded: not shown
        yield _event("failure", {"text": COMPLETION_UNRECORDED})
    except Exception as e:  # the page must say so, not hang
        log.error("lookup page stream failed: %s", type(e).__name__)
        yield _event("failure", {"text": "Sorry, the lookup could not be finished. "
                                         "Try again."})


@blp.route("/lookups/recent")
def recent() -> Any:
    engine = current_app.extensions["federator"].engine
    items = recent_lookups(engine, g.principal.id)
    endpoints = current_app.extensions["federator"].registry.all()
    names = {e.id: e.name for e in endpoints}
    area_names = {code: e.name for e in endpoints for code in e.coverage}
    rows = [{"lookup_id": item.lookup_id, "at": item.at, "purpose": item.purpose,
             "basis_type": item.basis_type, "asked": item.asked,
             "outcomes": outcome_words(item.outcomes),
             "complete": item.complete, "interrupted": item.interrupted,
             "reference": item.reference, "follows": item.follows,
             "areas": sorted({area_names.get(a, a) for a in item.areas}),
             "matched": [names.get(a, a) for a in item.matched]}
            for item in items]
    return render_page("web/recent.html", no_store=True, rows=rows,
                       title="My recent lookups")
