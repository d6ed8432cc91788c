"""'Ask again' keeps the first answer: signed by the broker, put together with
the retry's, never stored."""

from __future__ import annotations

import pytest

from federator.web.combined import combine, open_answer, sign_answer

FIRST = {
    "lookup_id": "L1", "complete": False,
    "authorities": [{"id": "a", "name": "Leeds", "outcome": "match"},
                    {"id": "b", "name": "York", "outcome": "timeout"},
                    {"id": "c", "name": "Hull", "outcome": "error"}],
    "professionals": [{"name": "Sam", "sources": ["a"]}],
    "notices": [{"authority": "a", "text": "Ring first"},
                {"authority": None, "text": "Only national services"}],
}
AGAIN = {
    "lookup_id": "L2", "complete": False,
    "authorities": [{"id": "b", "name": "York", "outcome": "match"},
                    {"id": "c", "name": "Hull", "outcome": "timeout"}],
    "professionals": [{"name": "Kim", "sources": ["b"]}],
    "notices": [{"authority": "b", "text": "Out of hours: duty desk"},
                {"authority": None, "text": "Only national services"}],
}


def test_the_combined_answer_keeps_both_and_each_authoritys_latest_outcome() -> None:
    both = combine(FIRST, AGAIN)
    assert both["lookup_id"] == "L2" and both["lookups"] == ["L1", "L2"]
    assert [(a["id"], a["outcome"], a["lookup"]) for a in both["authorities"]] == [
        ("a", "match", "L1"), ("b", "match", "L2"), ("c", "timeout", "L2")]
    assert [(p["name"], p["lookup"]) for p in both["professionals"]] == [
        ("Sam", "L1"), ("Kim", "L2")]
    assert [n["text"] for n in both["notices"]] == [
        "Ring first", "Out of hours: duty desk", "Only national services"]
    assert both["complete"] is False
    done = combine(FIRST, {**AGAIN, "authorities": [
        {"id": "b", "outcome": "match"}, {"id": "c", "outcome": "no_match"}]})
    assert done["complete"] is True


def test_a_second_ask_again_keeps_every_lookup_in_order() -> None:
    third = {"lookup_id": "L3", "authorities": [{"id": "c", "outcome": "match"}],
             "professionals": [{"name": "Jo", "sources": ["c"]}], "notices": []}
    all3 = combine(combine(FIRST, AGAIN), third)
    assert all3["lookups"] == ["L1", "L2", "L3"]
    assert [(p["name"], p["lookup"]) for p in all3["professionals"]] == [
        ("Sam", "L1"), ("Kim", "L2"), ("Jo", "L3")]
    assert all3["complete"] is True


def test_the_signed_answer_opens_only_intact_for_its_person_and_lookup() -> None:
    blob = sign_answer("k" * 32, FIRST, "alice")
    assert open_answer("k" * 32, blob, actor_id="alice", lookup_id="L1") == FIRST


@pytest.mark.parametrize(("secret", "change", "actor", "lookup", "max_age"), [
    ("x" * 32, None, "alice", "L1", 60),      # another broker's key
    ("k" * 32, "tamper", "alice", "L1", 60),  # changed in the browser
    ("k" * 32, None, "bob", "L1", 60),        # another person's answer
    ("k" * 32, None, "alice", "L9", 60),      # the answer of another lookup
    ("k" * 32, None, "alice", "L1", -1),      # too old
    ("k" * 32, "empty", "alice", "L1", 60),
])
def test_a_blob_that_fails_any_check_is_ignored(secret, change, actor, lookup, max_age) -> None:
    blob = sign_answer("k" * 32, FIRST, "alice")
    if change == "tamper":
        blob = blob[:10] + ("A" if blob[10] != "A" else "B") + blob[11:]
    elif change == "empty":
        blob = ""
    assert open_answer(secret, blob, actor_id=actor, lookup_id=lookup,
                       max_age_s=max_age) is None
