"""Subject access: "who asked about my child?", from the audit trail.

The child's identity is pseudonymised as lookups are (``queries.child_pseudonyms``):
the NHS number, and given name + family name + date of birth, each on its own,
since a lookup made without an NHS number was recorded under the name pseudonym.
The report says which of those identities it searched.

Each lookup shows only what the trail holds and a family may be told: when,
the asking organisation and role, the purpose, the basis type, and each
authority asked with its outcome. Never the practitioner's name or id, never a
safeguarding justification, never a professional (the trail has none). Lookups
on a safeguarding or section 47 basis are also listed in ``to_review``: a
person decides whether to disclose them, not this code. So are lookups typed
with other details that an authority matched to the same record
(``found_by: record_match``): a person checks they are this child.

The report says from when the trail holds records (``records_from``): older ones
may have been pruned after the retention period (``federator.audit.retention``).

``build_report`` and the CSV writer are pure; ``subject_access`` reads the trail.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Collection, Iterable, Mapping
from typing import Any

from sqlalchemy import Engine

from federator.audit.asked import asked as asked_ids
from federator.audit.asked import asked_outcomes
from federator.audit.export import cell as _cell
from federator.audit.queries import child_pseudonyms, lookups_of_child
from federator.audit.retention import earliest_kept
from federator.names import LOOKUP_COMPLETED, LOOKUP_INTERRUPTED, LOOKUP_REQUESTED

REVIEW_POWERS = ("children-act-1989-s47",)
SEARCHED_TEXT = {"nhs_number": "NHS number",
                 "name_dob": "first name, last name and date of birth"}
CSV_COLUMNS = ("lookup_id", "at", "organisation", "role", "purpose", "basis_type",
               "authorities", "to_review")


def needs_review(requested: Mapping[str, Any]) -> bool:
    """Safeguarding and section 47 lookups: a person decides before disclosure."""
    basis = requested.get("basis") or {}
    if requested.get("basis_type") == "safeguarding" or basis.get("type") == "safeguarding":
        return True
    return isinstance(basis, Mapping) and basis.get("power") in REVIEW_POWERS


def build_report(records: Iterable[Mapping[str, Any]], searched: list[str],
                 request_reference: str, typed: Collection[str] | None = None
                 ) -> dict[str, Any]:
    """The report from the child's trail records (oldest first). A lookup recorded
    under none of the ``typed`` pseudonyms was found because an authority matched
    it to the same record (``record_ref``): a person checks it is this child
    before it is disclosed, so it is also listed in ``to_review``."""
    requested: dict[str, Mapping[str, Any]] = {}
    completed: dict[str, Mapping[str, Any]] = {}
    interrupted: set[str] = set()
    for record in records:
        lookup_id = record.get("lookup_id")
        if not isinstance(lookup_id, str):
            continue
        if record.get("event") == LOOKUP_REQUESTED:
            requested.setdefault(lookup_id, record)
        elif record.get("event") == LOOKUP_COMPLETED:
            completed[lookup_id] = record
        elif record.get("event") == LOOKUP_INTERRUPTED:
            interrupted.add(lookup_id)
    lookups, to_review = [], []
    for lookup_id, asked in requested.items():
        # Only the authorities asked: those not asked never received the child's identity.
        done = completed.get(lookup_id)
        if done is not None:
            authorities = [{"id": a, "outcome": outcome}
                           for a, outcome in asked_outcomes(asked, done).items()]
        else:  # cut off by a crash, or not finished (or its record missing): unknown
            outcome = "interrupted" if lookup_id in interrupted else None
            authorities = [{"id": a, "outcome": outcome} for a in asked_ids(asked)]
        item = {"lookup_id": lookup_id, "at": asked.get("at"),
                "organisation": asked.get("actor_organisation"),
                "role": asked.get("actor_role"), "purpose": asked.get("purpose"),
                "basis_type": asked.get("basis_type"), "authorities": authorities,
                "found_by": ("record_match" if typed is not None
                             and asked.get("child_pseudonym") not in typed else "details")}
        lookups.append(item)
        if needs_review(asked) or item["found_by"] == "record_match":
            to_review.append(item)
    return {"request_reference": request_reference, "searched": list(searched),
            "lookups": lookups, "to_review": to_review}


def subject_access(engine: Engine, child: Mapping[str, Any], audit_key: str,
                   request_reference: str) -> tuple[dict[str, Any], list[str]]:
    """The report, and the pseudonyms searched (for the audit record)."""
    searched, pseudonyms = child_pseudonyms(child, audit_key)
    records = lookups_of_child(engine, pseudonyms, limit=10000)
    report = build_report(records, searched, request_reference, typed=pseudonyms)
    kept = earliest_kept(engine)  # lookups before it were pruned: the report says so
    report.update(records_from=kept["records_from"], pruned_on=kept["pruned_on"])
    return report, pseudonyms


def searched_words(searched: Iterable[str]) -> list[str]:
    """``["nhs_number", "name_dob"]`` → plain words for the page and the letter."""
    return [SEARCHED_TEXT.get(s, s) for s in searched]




def report_csv(report: Mapping[str, Any]) -> str:
    """One row per lookup; authorities as ``id:outcome`` joined by ``;``."""
    review = {item["lookup_id"] for item in report.get("to_review") or []}
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for item in report.get("lookups") or []:
        authorities = ";".join(f"{a['id']}:{a['outcome'] or 'unknown'}"
                               for a in item["authorities"])
        writer.writerow([_cell(item["lookup_id"]), _cell(item["at"]),
                         _cell(item["organisation"]), _cell(item["role"]),
                         _cell(item["purpose"]), _cell(item["basis_type"]),
                         _cell(authorities), "yes" if item["lookup_id"] in review else "no"])
    return buffer.getvalue()
