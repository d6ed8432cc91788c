"""One row per lookup (``federator.audit.casework``) and reviews read back from
the trail's ``audit.review.*`` records (``federator.audit.reviews``): pure."""

from __future__ import annotations

from typing import Any

import pytest

from federator.audit.casework import flag_words, join_lookups
from federator.audit.reviews import (
    Review,
    fold_reviews,
    note_problem,
    review_change,
)


def requested(seq: int, lookup_id: str, **extra: Any) -> dict[str, Any]:
    return {"seq": seq, "event": "lookup.requested", "at": "2026-12-03T10:00:00.000+00:00",
            "lookup_id": lookup_id, "actor_id": "p1", "actor_role": "practitioner",
            "actor_organisation": "Leeds", "purpose": "Assessment", "basis_type": "consent",
            "basis": {"type": "consent", "reference": "CASE-1"}, "areas": ["E08000035"],
            "authorities": ["leeds-cs", "leeds-health"], **extra}


def completed(seq: int, lookup_id: str, **extra: Any) -> dict[str, Any]:
    return {"seq": seq, "event": "lookup.completed", "lookup_id": lookup_id,
            "complete": False, "professionals": 2,
            "outcomes": [{"id": "leeds-cs", "outcome": "match"},
                         {"id": "leeds-health", "outcome": "timeout"}], **extra}


def test_a_lookup_is_one_row_joined_with_its_completion_and_both_records():
    flag = {"flag": "out_of_hours", "reason": "Made at 22:00."}
    heads = [requested(5, "L1", flags=[flag]),
             {"seq": 6, "event": "lookup.refused", "actor_id": "p1", "fields": ["basis"],
              "reason": "consent too old"},
             {"seq": 8, "event": "lookup.rate_limited", "actor_id": "p2", "limit": "10/minute"}]
    late = {"flag": "repeat_lookups", "reason": "matched the same record"}
    rows = join_lookups(heads, [completed(7, "L1", flags=[late]),
                                completed(99, "other"), {"seq": 9, "event": "audit.x"}])
    assert [(r.seq, r.kind) for r in rows] == [(5, "lookup"), (6, "refused"),
                                                (8, "rate_limited")]
    lookup = rows[0]
    assert lookup.records == [5, 7] and lookup.complete is False
    assert lookup.outcome_counts() == {"match": 1, "timeout": 1}
    assert lookup.matched == ["leeds-cs"] and lookup.professionals == 2
    assert lookup.reference == "CASE-1" and lookup.areas == ["E08000035"]
    assert lookup.flag_names == ["out_of_hours", "repeat_lookups"]
    assert [f["seq"] for f in lookup.flags] == [5, 7]
    assert lookup.flags[0]["words"] == "Out of hours"
    assert rows[1].kind_words == "Refused" and rows[1].refused_fields == ["basis"]
    assert rows[2].kind_words == "Too many lookups" and rows[2].limit == "10/minute"


def test_an_interruption_ends_a_lookup_but_a_completion_wins():
    interrupted = {"seq": 3, "event": "lookup.interrupted", "lookup_id": "L1"}
    [cut] = join_lookups([requested(1, "L1")], [interrupted])
    assert cut.complete is False and cut.interrupted and cut.records == [1, 3]
    [done] = join_lookups([requested(1, "L1")], [interrupted, completed(2, "L1")])
    assert done.interrupted is False and done.outcomes["leeds-cs"] == "match"
    [waiting] = join_lookups([requested(1, "L1")], [])
    assert waiting.complete is None


def test_flags_in_words_and_a_new_flag_in_its_own_name():
    assert flag_words("scope_all") == "Every authority asked"
    assert flag_words("sustained_volume") == "Sustained volume"


# -- reviews ------------------------------------------------------------------------


def review(seq: int, case: int, event: str, **extra: Any) -> dict[str, Any]:
    return {"seq": seq, "case": case, "event": event, "at": f"2026-12-03T1{seq % 10}:00Z",
            "actor_id": "a1", "actor_organisation": "Leeds", **extra}


def test_a_cases_state_is_its_latest_state_change_in_seq_order():
    records = [review(30, 5, "audit.review.referred", outcome="to the LADO"),
               review(20, 5, "audit.review.raised_with_manager", outcome="manager told"),
               review(31, 5, "audit.review.noted", note="LADO acknowledged"),
               review(25, 6, "audit.review.no_concern", outcome="planned visit"),
               {"seq": 40, "event": "audit.review.referred"},  # no case: ignored
               review(41, 6, "audit.records_listed")]
    reviews = fold_reviews(records)
    assert set(reviews) == {5, 6}
    five = reviews[5]
    assert five.state == "referred" and five.outcome == "to the LADO"
    assert [s.seq for s in five.steps] == [20, 30, 31] and five.last_seq == 31
    assert five.steps[-1].state is None and five.steps[-1].note == "LADO acknowledged"
    assert five.state_words == "Referred"
    reopened = fold_reviews([*records, review(50, 6, "audit.review.reopened")])
    assert reopened[6].state == "open" and reopened[6].outcome == ""


def test_a_change_makes_the_event_of_its_state_or_a_note():
    case = Review(case=5)
    event, fields = review_change(case, state="raised_with_manager", outcome=" told ",
                                  note="")  # type: ignore[misc]
    assert event == "audit.review.raised_with_manager"
    assert fields == {"case": 5, "state": "raised_with_manager", "based_on": 0,
                      "outcome": "told"}
    done = fold_reviews([{**review(9, 5, event), **fields}])[5]
    noted = review_change(done, state="raised_with_manager", outcome="told", note="called")
    assert noted == ("audit.review.noted", {"case": 5, "state": "raised_with_manager",
                                            "based_on": 9, "outcome": "told",
                                            "note": "called"})


@pytest.mark.parametrize(("state", "outcome", "note", "field"), [
    ("closed", "x", "", "state"),
    ("referred", "", "", "outcome"),
    ("open", "", "", "note"),  # nothing changes
    ("open", "", "x" * 501, "note"),
    ("no_concern", "y" * 201, "", "outcome"),
    ("no_concern", "fine", "NHS 943 476 5919 checked", "note"),
    ("no_concern", "child at LS6 1AA", "", "outcome"),
    ("no_concern", "fine", "a\x00b", "note"),
])
def test_a_change_that_cannot_be_kept_names_its_field(state, outcome, note, field):
    problems = review_change(Review(case=5), state=state, outcome=outcome, note=note)
    assert isinstance(problems, dict) and field in problems


def test_notes_must_not_hold_an_nhs_number_or_a_postcode():
    assert note_problem("9434765919") and note_problem("943-476-5919")
    assert note_problem("lives at HX7 5GQ")
    assert note_problem("Spoke to the manager on 3 Dec; visit planned in 2 weeks") is None
    assert note_problem("ticket 12345") is None
    # written to slip past a plain pattern: full-width digits, a zero-width space
    assert note_problem("９４３ ４７６ ５９１９") and note_problem("943\u200b476\u200b5919")
