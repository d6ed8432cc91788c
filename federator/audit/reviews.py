"""Reviews of flagged lookups, read back from the trail (pure).

A flagged lookup is a case, numbered by the seq of its first record, and open
until an auditor says otherwise. Every change is an ``audit.review.*`` record
(``federator.names.AUDIT_REVIEWED``, ``AUDIT_REVIEW_NOTED``) naming the case,
the state it was put in, the outcome and a note, with who and when as every
record has; there is no table of reviews to edit: ``fold_reviews`` reads a
case's state from those records, in order, every time it is shown. An insider
who edits a review record breaks the hash chain, which the auditor's pages
check and show (``docs/audit.md``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from federator.inputs import text_problem
from federator.lookup.free_text import nhs_numbers
from federator.names import AUDIT_REVIEW_NOTED, AUDIT_REVIEWED

STATES = tuple(AUDIT_REVIEWED)
OPEN = "open"
STATE_WORDS = {"open": "Open", "no_concern": "Reviewed: no concern",
               "raised_with_manager": "Raised with the practitioner's manager",
               "referred": "Referred"}
assert set(STATE_WORDS) == set(STATES)
#: the state each review event puts its case in (a note leaves it as it was)
EVENT_STATES = {event: state for state, event in AUDIT_REVIEWED.items()}
NOTE_MAX = 500
OUTCOME_MAX = 200

NHS_LIKE = re.compile(r"(?<!\d)\d{3}[ -]?\d{3}[ -]?\d{4}(?!\d)")
POSTCODE = re.compile(r"\b[A-Z]{1,2}\d[A-Z\d]?\s*\d[A-Z]{2}\b", re.IGNORECASE)
NO_CHILD = ("Notes must not identify the child: take out the {what}. The case is "
            "linked to its records, which is enough to find it again.")


@dataclass(frozen=True)
class ReviewStep:
    """One ``audit.review.*`` record, as the case's history shows it."""

    seq: int
    at: str
    event: str
    state: str | None  # None: a note only
    outcome: str
    note: str
    actor_id: str
    actor_organisation: str


@dataclass(frozen=True)
class Review:
    case: int
    state: str = OPEN
    outcome: str = ""
    steps: tuple[ReviewStep, ...] = ()

    @property
    def last_seq(self) -> int:
        """The newest review record's seq (0: never reviewed): what a change is based on."""
        return self.steps[-1].seq if self.steps else 0

    @property
    def state_words(self) -> str:
        return STATE_WORDS[self.state]


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def step_of(record: Mapping[str, Any]) -> ReviewStep | None:
    event = str(record.get("event"))
    if event not in EVENT_STATES and event != AUDIT_REVIEW_NOTED:
        return None
    if not isinstance(record.get("seq"), int) or not isinstance(record.get("case"), int):
        return None
    return ReviewStep(seq=record["seq"], at=_text(record.get("at")), event=event,
                      state=EVENT_STATES.get(event), outcome=_text(record.get("outcome")),
                      note=_text(record.get("note")), actor_id=_text(record.get("actor_id")),
                      actor_organisation=_text(record.get("actor_organisation")))


def fold_reviews(records: Iterable[Mapping[str, Any]]) -> dict[int, Review]:
    """Each case's review from its ``audit.review.*`` records (any order given;
    applied in seq order): the latest state change sets the state and outcome."""
    steps: dict[int, list[tuple[ReviewStep, int]]] = {}
    for record in records:
        step = step_of(record)
        if step is not None:
            steps.setdefault(int(record["case"]), []).append((step, step.seq))
    reviews = {}
    for case, found in steps.items():
        state, outcome = OPEN, ""
        ordered = tuple(s for s, _ in sorted(found, key=lambda pair: pair[1]))
        for step in ordered:
            if step.state is not None:
                state, outcome = step.state, step.outcome
        reviews[case] = Review(case=case, state=state, outcome=outcome, steps=ordered)
    return reviews


def review_of(reviews: Mapping[int, Review], case: int) -> Review:
    return reviews.get(case) or Review(case=case)


def note_problem(note: str) -> str | None:
    """Why a note (or an outcome) cannot be kept, or None. The one check every
    review text goes through: point it at a fuller free-text checker (such as
    ``federator.lookup.free_text.child_in_text``) here and nowhere else."""
    # any check-digit-valid NHS number however written (full-width digits,
    # separators, invisible characters), and any ten digits that look like one
    if nhs_numbers(note) or NHS_LIKE.search(note):
        return NO_CHILD.format(what="NHS number")
    if POSTCODE.search(note):
        return NO_CHILD.format(what="postcode")
    return None


def review_change(current: Review, *, state: str, outcome: str, note: str
                  ) -> tuple[str, dict[str, Any]] | dict[str, str]:
    """The record a change makes, ``(event, fields)``, or the problems by field.

    A new state is its own event; the same state and outcome with a note is
    ``audit.review.noted``; moving a case out of ``open`` needs an outcome."""
    outcome, note = outcome.strip(), note.strip()
    problems: dict[str, str] = {}
    if state not in STATES:
        problems["state"] = "Choose what happened with this lookup."
    for name, value, most in (("outcome", outcome, OUTCOME_MAX), ("note", note, NOTE_MAX)):
        problem = text_problem(value, max_length=most, multiline=name == "note") \
            or note_problem(value)
        if problem:
            problems[name] = problem
    if problems:
        return problems
    unchanged = state == current.state and outcome == current.outcome
    if unchanged and not note:
        return {"note": "Choose a different state, change the outcome or add a note."}
    if state != OPEN and not outcome:
        return {"outcome": "Say what the outcome was, in a few words."}
    fields: dict[str, Any] = {"case": current.case, "state": state, "based_on": current.last_seq}
    if outcome:
        fields["outcome"] = outcome
    if note:
        fields["note"] = note
    return (AUDIT_REVIEW_NOTED if unchanged else AUDIT_REVIEWED[state]), fields
