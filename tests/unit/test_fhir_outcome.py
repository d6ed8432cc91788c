"""An OperationOutcome's diagnostics kept for the outcome's detail, without patient
data (``adapters.fhir_outcome``)."""

from __future__ import annotations

import json

from adapters.fhir_outcome import MAX_TEXT, outcome_detail, sanitise

SENT = ("9434765919", "Amara", "Okafor", "2015-03-12", "LS6 2AB", "pat-1")


def body(*issues: dict[str, object]) -> bytes:
    return json.dumps({"resourceType": "OperationOutcome", "issue": list(issues)}).encode()


def test_diagnostics_are_kept() -> None:
    said = outcome_detail(body({"severity": "error", "code": "not-supported",
                                "diagnostics": "Unknown search parameter '_foo' for CareTeam"}))
    assert said == (": OperationOutcome error/not-supported: Unknown search parameter "
                    "'_foo' for CareTeam")
    # details.text when there are no diagnostics
    assert outcome_detail(body({"severity": "error", "code": "too-costly",
                                "details": {"text": "Too many includes"}})) == \
        ": OperationOutcome error/too-costly: Too many includes"


def test_what_was_sent_about_the_child_is_cut_out() -> None:
    text = ("Search failed for 943 476 5919 (OKAFOR, amara, born 2015-03-12, LS6 2AB, "
            "record pat-1) at Patient?identifier=https://fhir.nhs.uk/Id/nhs-number|9434765919"
            "&family=Okafor")
    said = outcome_detail(body({"severity": "error", "code": "processing",
                                "diagnostics": text}), SENT)
    for value in (*SENT, "943 476 5919", "OKAFOR", "amara"):
        assert value not in said, value
    assert said.startswith(": OperationOutcome error/processing: Search failed for ")


def test_what_looks_like_a_persons_detail_is_masked_by_its_shape() -> None:
    # values the broker did not send (another child, a carer) are still masked
    said = sanitise("No match for 'Zoe Smith 2016' born 01/02/2016 at M1 1AA, "
                    "call 0113 496 0000 or carer@example.org; given=Zoe")
    for value in ("Zoe", "2016", "M1 1AA", "0113", "carer@example.org"):
        assert value not in said, value
    # a name the server took from its own record, never sent: masked as a capitalised word
    assert sanitise("No CareTeam found for Amara OKAFOR (McDonald House), Patient/pat-9") == \
        "No CareTeam found for […] […] ([…] […]), Patient/[…]"
    assert sanitise("HAPI-2001: Too many includes: CareTeam:participant") == \
        "HAPI-2001: Too many includes: CareTeam:participant"


def test_one_short_line_at_most_three_issues() -> None:
    long = "x" * 5000 + "\n\u202eevil"
    said = outcome_detail(body(*[{"severity": "error", "code": "processing",
                                  "diagnostics": long}] * 5))
    assert said.count("error/processing") == 3
    assert "\n" not in said and "\u202e" not in said
    assert all(len(part) <= MAX_TEXT + 40 for part in said.split(";"))
    assert outcome_detail(body({"severity": "<b>", "code": "Not A Code"})) == \
        ": OperationOutcome ?/?"


def test_anything_else_says_nothing() -> None:
    assert outcome_detail(b"<html>") == ""
    assert outcome_detail(b'{"resourceType": "Patient"}') == ""
    assert outcome_detail(body()) == ": OperationOutcome"
