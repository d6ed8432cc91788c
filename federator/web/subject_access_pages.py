"""The subject access page (role ``auditor``): "who asked about my child?".

The report is the API's (``federator.api.subject_access.run_subject_access``,
audited as ``audit.subject_access`` each time it is made, whatever the output):
shown on the page, as a print view fit to send to a family, or downloaded as
CSV or JSON. The identity is posted back from hidden fields, never put in a URL.
"""

from __future__ import annotations

import json
import re
from typing import Any

from flask import Response, current_app, request
from marshmallow import ValidationError

from federator.api.subject_access import SubjectAccessBody, run_subject_access
from federator.audit.subject_access import report_csv, searched_words
from federator.auth.access import require_page_roles
from federator.web.audit_forms import SubjectAccessForm, child_from_form, read_posted, show_errors
from federator.web.audit_pages import auditor_page
from federator.web.blueprint import PageBlueprint, add_nav_entry, render_page
from federator.web.forms import error_summary
from federator.web.results import OUTCOME_TEXT
from federator.web.times import uk_time

blp = require_page_roles(
    PageBlueprint("web_subject_access", __name__, template_folder="templates"), "auditor")

add_nav_entry("web_subject_access.subject_access", "Subject access", "auditor")

ORDER = ["nhs_number", "given_name", "family_name", "date_of_birth", "request_reference"]
OUTPUTS = ("show", "print", "csv", "json")
BASIS_WORDS = {"consent": "Consent", "safeguarding": "Safeguarding (without consent)",
               "statutory": "A statutory power or court order"}


@blp.after_request
def _no_store(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    return response


def _page(form: SubjectAccessForm, status: int = 200, general: list[str] | None = None,
          report: dict[str, Any] | None = None) -> Any:
    summary = error_summary(form, ORDER)
    summary += [{"text": t, "href": "#nhs_number"} for t in general or []]
    title = "Subject access: who asked about this child?"
    return auditor_page("web/audit/subject_access.html", status, form=form, errors=summary,
                        report=report and _view(report, _names()),
                        hidden=_hidden(form) if report else [],
                        title=f"Error: {title}" if summary else title)


def _view(report: dict[str, Any], names: dict[str, str] | None = None) -> dict[str, Any]:
    """The report with words for people: outcomes in words, authorities by name
    where the registry knows them (pure)."""
    review = {item["lookup_id"] for item in report["to_review"]}
    names = names or {}

    def item_view(item: dict[str, Any]) -> dict[str, Any]:
        return {**item, "basis_words": BASIS_WORDS.get(item["basis_type"], item["basis_type"]),
                "when": uk_time(item["at"]),
                "outcomes": [{"id": names.get(a["id"], a["id"]), "text": OUTCOME_TEXT.get(
                    a["outcome"], ("Outcome not recorded", ""))[0]}
                    for a in item["authorities"]]}

    return {**report, "searched_words": searched_words(report["searched"]),
            "disclosable": [item_view(i) for i in report["lookups"]
                            if i["lookup_id"] not in review],
            "review": [item_view(i) for i in report["to_review"]]}


def _names() -> dict[str, str]:
    registry = current_app.extensions["federator"].registry
    return {e.id: e.name for e in registry.all()}


def _hidden(form: SubjectAccessForm) -> list[tuple[str, str]]:
    """The identity as the form received it, to post again for another output."""
    pairs = [(name, form[name].data or "") for name in
             ("nhs_number", "given_name", "family_name", "request_reference")]
    dob = form.date_of_birth.data
    if dob is not None:
        pairs += [("date_of_birth", str(dob.day)), ("date_of_birth", str(dob.month)),
                  ("date_of_birth", str(dob.year))]
    return pairs


@blp.route("/audit/subject-access", methods=["GET", "POST"])
def subject_access() -> Any:
    form = SubjectAccessForm()
    if request.method == "GET":
        return _page(form)
    read_posted(form)
    output = request.form.get("output", "show")
    if output not in OUTPUTS:
        output = "show"
    body = {"child": child_from_form(form.data),
            "request_reference": (form.request_reference.data or "").strip()}
    errors: dict[str, Any] = {}
    try:
        loaded = SubjectAccessBody().load(body)
    except ValidationError as e:
        errors = dict(e.messages) if isinstance(e.messages, dict) else {"form": e.messages}
    placed = show_errors(form, errors, ("request_reference",))
    if placed:
        return _page(form, 422, placed.get("form"))
    reference = loaded["request_reference"].strip()
    report = run_subject_access(loaded["child"], reference, via="web", output=output)
    name = re.sub(r"[^A-Za-z0-9_-]+", "-", reference)[:60] or "report"
    if output == "csv":
        return Response(report_csv(report), mimetype="text/csv", headers={
            "Content-Disposition": f"attachment; filename=subject-access-{name}.csv"})
    if output == "json":
        return Response(json.dumps(report, indent=2, ensure_ascii=False),
                        mimetype="application/json", headers={
                            "Content-Disposition":
                                f"attachment; filename=subject-access-{name}.json"})
    if output == "print":
        return render_page("web/audit/subject_access_print.html", no_store=True,
                           report=_view(report, _names()), supplied=_supplied(loaded["child"]),
                           include_review=request.form.get("include_review") == "yes",
                           title=f"Lookups about your child ({reference})")
    return _page(form, report=report)


def _supplied(child: dict[str, Any]) -> list[tuple[str, str]]:
    """What the requester gave, to repeat in the letter (and nothing more)."""
    rows = []
    if child.get("nhs_number"):
        rows.append(("NHS number", child["nhs_number"]))
    name = " ".join(p for p in (child.get("given_name"), child.get("family_name")) if p)
    if name:
        rows.append(("Name", name))
    dob = child.get("date_of_birth")
    if dob is not None:
        rows.append(("Date of birth", f"{dob.day} {dob:%B %Y}"))
    return rows
