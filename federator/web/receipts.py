"""``GET /lookups/<lookup_id>/receipt``: the practitioner's receipt for the case
file, from the audit trail (the same as ``GET /api/v1/lookups/<id>/receipt``).
No professionals, no child details: the trail holds neither."""

from __future__ import annotations

from typing import Any

from flask import abort, current_app, g

from federator.auth.access import require_page_roles
from federator.lookup.followups import NotYours, lookup_receipt
from federator.lookup.journey import NOT_ASKED_CIRCUIT_OPEN, NOT_ASKED_SUSPENDED
from federator.web.blueprint import PageBlueprint, render_page
from federator.web.recent import OUTCOME_WORDS
from federator.web.times import uk_time_long

INTERRUPTED_WORDS = "sent the question; cut off before its answer was recorded"
NOT_ASKED_WORDS = {NOT_ASKED_SUSPENDED: "suspended by the broker's administrators",
                   NOT_ASKED_CIRCUIT_OPEN: "recent calls to it failed, so it was not called"}

blp = require_page_roles(PageBlueprint("web_receipts", __name__, template_folder="templates"),
                         "practitioner")


@blp.route("/lookups/<lookup_id>/receipt")
def receipt(lookup_id: str) -> Any:
    services = current_app.extensions["federator"]
    try:
        body = lookup_receipt(services.trail, lookup_id, g.principal.id,
                              names=services.lookups.endpoint_names(),
                              checkpoint_every=services.settings.audit_checkpoint_every,
                              interrupted_after_s=services.lookups.interrupted_after_s)
    except NotYours:
        abort(404)
    return render_page("web/receipt.html", no_store=True, receipt=body,
                       when=receipt_time(body["at"]), not_asked_words=NOT_ASKED_WORDS,
                       words={**OUTCOME_WORDS, "interrupted": INTERRUPTED_WORDS},
                       title="Lookup receipt")


def receipt_time(at: str) -> str:
    """``2026-11-26T06:40:01.123+00:00`` → ``26 November 2026 at 06:40:01 GMT``."""
    return uk_time_long(at)
