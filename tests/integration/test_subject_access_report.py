"""The subject access report's pure parts: pairing requested and completed
records, what is held for review, what is left out, and the CSV. (No I/O:
the whole path over HTTP is test_subject_access.py.)"""

from __future__ import annotations

import csv
import io
import json

from federator.audit.subject_access import build_report, needs_review, report_csv
from federator.web.audit_forms import child_from_form, place_errors, record_query

SAFEGUARDING = {"type": "safeguarding", "justification": "Risk of harm tonight if asked."}


def requested(lookup_id: str, basis: dict, **extra) -> dict:
    return {"seq": 1, "event": "lookup.requested", "lookup_id": lookup_id,
            "at": "2026-11-20T10:00:00.000+00:00", "actor_id": "demo-practitioner-1",
            "actor_role": "practitioner", "actor_organisation": "Leeds City Council",
            "purpose": "=HYPERLINK(\"x\")", "basis_type": basis["type"], "basis": basis,
            "child_pseudonym": "p" * 64, "authorities": ["leeds-cs", "york-health"], **extra}


def completed(lookup_id: str) -> dict:
    return {"event": "lookup.completed", "lookup_id": lookup_id, "child_pseudonym": "p" * 64,
            "outcomes": [{"id": "leeds-cs", "outcome": "match", "latency_ms": 40,
                          "professionals": 2},
                         {"id": "york-health", "outcome": "timeout", "latency_ms": 5000}]}


def test_pairs_records_and_holds_safeguarding_and_s47_for_review():
    records = [
        requested("L1", {"type": "consent", "given_by": "parent", "reference": "CASE-9"}),
        completed("L1"),
        requested("L2", SAFEGUARDING),
        requested("L3", {"type": "statutory", "power": "children-act-1989-s47",
                         "reference": "S47-1"}),
        completed("L3"),
        requested("L4", {"type": "statutory", "power": "children-act-1989-s17",
                         "reference": "S17-1"}),
        {"event": "lookup.refused", "actor_id": "x"},
    ]
    report = build_report(records, ["nhs_number"], "SAR-1")
    assert [i["lookup_id"] for i in report["lookups"]] == ["L1", "L2", "L3", "L4"]
    assert [i["lookup_id"] for i in report["to_review"]] == ["L2", "L3"]
    assert report["lookups"][0]["authorities"] == [
        {"id": "leeds-cs", "outcome": "match"}, {"id": "york-health", "outcome": "timeout"}]
    # never finished: the authorities asked, outcome unknown
    assert report["lookups"][1]["authorities"] == [
        {"id": "leeds-cs", "outcome": None}, {"id": "york-health", "outcome": None}]
    text = json.dumps(report)
    for kept_out in ("demo-practitioner-1", "Risk of harm", "CASE-9", "S47-1", "p" * 64,
                     "latency_ms", "professionals"):
        assert kept_out not in text
    assert needs_review({"basis_type": "statutory",
                         "basis": {"power": "children-act-1989-s47"}})
    assert not needs_review({"basis_type": "statutory", "basis": {"power": "court-order"}})


def test_csv_marks_review_and_defuses_formulas():
    report = build_report([requested("L1", SAFEGUARDING), completed("L1")], ["name_dob"],
                          "SAR-2")
    [row] = list(csv.DictReader(io.StringIO(report_csv(report))))
    assert row["to_review"] == "yes" and row["purpose"].startswith("'=")
    assert row["authorities"] == "leeds-cs:match;york-health:timeout"


def test_form_mapping_and_error_placement():
    assert child_from_form({"nhs_number": " 943 476 5919 ", "given_name": "",
                            "family_name": None, "date_of_birth": None}) == {
        "nhs_number": "943 476 5919", "given_name": None, "family_name": None,
        "date_of_birth": None}
    placed = place_errors({"child": {"nhs_number": ["bad"], "_schema": ["odd"]},
                           "request_reference": ["Enter it"], "other": ["x"]},
                          ("request_reference",))
    assert placed == {"nhs_number": ["bad"], "form": ["odd", "x"],
                      "request_reference": ["Enter it"]}
    assert record_query({}) == {"event": "lookup.*", "limit": "25"}
    assert record_query({"event": "", "flagged": "on", "from": " 2026-11-01 "}) == {
        "flagged": "true", "from": "2026-11-01", "limit": "25"}


def test_cells_with_spaces_or_invisible_characters_before_a_formula_are_defused():
    from federator.audit.export import cell, csv_row
    for sneaky in (" =HYPERLINK(\"http://x\")", "  +1", "\t-2", "\u00a0@SUM(A1)",
                   "\u200b=cmd", "\u3000=1", "\n=1", "=1"):
        assert cell(sneaky) == "'" + sneaky, repr(sneaky)
    for plain in ("Assessment - section 17", " a = b", "", "2026-11-20", "\u00a0x"):
        assert cell(plain) == plain
    assert cell(None) == ""
    row = csv_row({"seq": 1, "purpose": " =evil()", "prev_hash": " =h", "hash": "x"})
    assert " =evil()" not in row[7:8] and row[7] == "' =evil()"
    report = build_report([requested("L1", SAFEGUARDING, purpose=" =x()"), completed("L1")],
                          ["name_dob"], "SAR-3")
    [line] = list(csv.DictReader(io.StringIO(report_csv(report))))
    assert line["purpose"] == "' =x()"
