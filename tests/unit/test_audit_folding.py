"""Folding a batch's earlier records into the history read before it
(federator.audit.folding): each of the history's caps applied to the stored
rows and the batch's together, as the database applies it to a trail holding
both. The end-to-end check, against appending one by one on PostgreSQL, is
``tests/integration/test_audit_batching.py``; these are the caps a random
trail does not reach."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from federator.audit import folding
from federator.audit.appending import sealed
from federator.audit.chain import GENESIS
from federator.audit.flags import FlagLimits
from federator.audit.folding import Batch, Stored

NOW = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)


def at(minutes: float) -> str:
    return folding.stamp(NOW + timedelta(minutes=minutes))


def new(**fields: object) -> dict:
    return {"event": "lookup.requested", "at": at(0), "actor_id": "a",
            "child_pseudonym": "x", **fields}


def batch_of(*records: dict) -> Batch:
    batch = Batch()
    for seq, record in enumerate(records, start=100):
        batch.add(sealed({"seq": seq, **record}, GENESIS))
    return batch


def requested(minutes: float, **fields: object) -> dict:
    return {"event": "lookup.requested", "at": at(minutes), "actor_id": "a",
            "child_pseudonym": "x", "lookup_id": f"L{minutes}", **fields}


def completed(minutes: float, outcome: str = "no_match", ref: str = "r1", **fields: object
              ) -> dict:
    answer = {"id": "leeds", "outcome": outcome,
              **({"record_ref": ref} if outcome == "match" else {})}
    return {"event": "lookup.completed", "at": at(minutes), "actor_id": "a",
            "child_pseudonym": "x", "lookup_id": f"L{minutes}", "outcomes": [answer],
            **fields}


def test_the_volume_counts_stay_capped_as_the_read_caps_them() -> None:
    limits = FlagLimits(per_hour=3, per_day=5)  # the read keeps 6 rows at most
    batch = batch_of(*(requested(-m) for m in (1, 2, 3)))
    assert batch.history(new(), Stored(day=2, hour=1), limits).actor_lookups_last_day == 5
    full = batch.history(new(), Stored(day=6, hour=2), limits)
    # the day's rows were capped: the hour's are the newest of them, 2 + 3 of 6
    assert (full.actor_lookups_last_day, full.actor_lookups_last_hour) == (6, 5)
    assert batch.history(new(), Stored(day=6, hour=6), limits).actor_lookups_last_hour == 6
    old = batch_of(requested(-61), requested(-60 * 25))  # over an hour, over a day ago
    history = old.history(new(), Stored(), limits)
    assert (history.actor_lookups_last_day, history.actor_lookups_last_hour) == (1, 0)


def test_the_sustained_hours_count_the_newest_rows_up_to_the_cap() -> None:
    limits = FlagLimits(per_hour=100, per_day=1000, sustained_hours=2, sustained_per_hour=2)
    # cap: 2 hours x 2 x 10 = 40 rows; the trail's read kept 40 (30 in the hour
    # ending now, 10 before), the batch adds 5 in the hour ending now: the newest
    # 40 are 35 of that hour and 5 of the one before
    stored = Stored(day=40, hour=30, sustained=tuple(sorted(
        [at(-1 - m / 10) for m in range(30)] + [at(-61 - m) for m in range(10)],
        reverse=True)))
    batch = batch_of(*(requested(-m) for m in (1, 2, 3, 4, 5)))
    assert batch.history(new(), stored, limits).actor_hourly == (35, 5)
    # rows after the record's own time (a clock ahead) are the newest of all, in no hour
    ahead = batch_of(*(requested(m) for m in (1, 2)))
    assert ahead.history(new(), stored, limits).actor_hourly == (30, 8)
    # under the cap, simply added; an hour's edges as ``flags.hourly_counts`` has
    # them: exactly an hour back is the second hour's, two hours back in neither
    few = Stored(day=12, hour=10, sustained=(at(-30), at(-59.999), at(-60), at(-120)))
    assert batch.history(new(), few, limits).actor_hourly == (7, 1)


def test_the_recent_completions_merge_newest_first_then_by_seq() -> None:
    limits = FlagLimits(no_match_streak=3)
    batch = batch_of(completed(-2, "match"), completed(-4))
    stored = Stored(recent=((at(-1), 90, True), (at(-3), 80, True), (at(-5), 70, False)))
    assert batch.history(new(), stored, limits).actor_recent_all_no_match == (
        True, False, True)  # -1 (stored), -2 (batch, matched), -3 (stored)
    same_time = batch_of(completed(-1, "match"))  # same at as the stored -1: higher seq
    assert same_time.history(new(), stored, limits).actor_recent_all_no_match == (
        False, True, True)


def test_repeats_count_to_the_reads_cap_and_never_retries() -> None:
    limits = FlagLimits(repeat_lookups=3)
    batch = batch_of(requested(-1), requested(-2, follows="L9"), requested(-3, child_pseudonym="y"),
                     requested(-60 * 25))  # outside the window
    assert batch.history(new(), Stored(repeats=2), limits).actor_child_lookups == 3
    assert batch.history(new(), Stored(repeats=folding.REPEAT_ROWS), limits
                         ).actor_child_lookups == folding.REPEAT_ROWS


def test_the_childs_organisations_in_the_window_are_added() -> None:
    batch = batch_of(requested(-1, actor_organisation="Leeds"),
                     requested(-60 * 73, actor_organisation="Hull"),  # outside 72 h
                     requested(-2, actor_organisation="York", child_pseudonym="y"),
                     completed(-1, actor_organisation="Bath"))  # not a request
    history = batch.history(new(), Stored(organisations=frozenset({"Wakefield"})),
                            FlagLimits())
    assert history.child_organisations == {"Wakefield", "Leeds"}


def test_other_events_and_other_actors_are_not_the_actors_history() -> None:
    batch = batch_of({"event": "registry.changed", "at": at(-1), "actor_id": "a"},
                     requested(-1, actor_id="b"))
    assert batch.history(new(), Stored(), FlagLimits()).actor_lookups_last_day == 0


def test_a_matched_completion_counts_the_batchs_typed_and_linked_lookups() -> None:
    limits = FlagLimits(repeat_lookups=1)
    batch = batch_of(completed(-3, "match", child_pseudonym="y"),  # linked by r1
                     completed(-2, "match", ref="r2"),  # typed the same, another record
                     completed(-1, "match", follows="L0"))  # a retry: not counted
    record = completed(0, "match")
    refs = [("leeds", "r1")]
    assert batch.matched(record, refs, (set(), set()), limits) == (1, 2)
    assert batch.matched(record, refs, ({"S1"}, {"S2"}), limits) == (2, 4)
    assert batch.matched({**record, "follows": "L1"}, refs, (set(), set()), limits) == (0, 0)


def test_the_batchs_references_are_the_newest_of_those_read() -> None:
    batch = batch_of(*(completed(-m, "match", actor_id=f"u{m}") for m in range(1, 4)))
    refs = [("leeds", "r1"), ("leeds", "r9")]
    assert batch.stored_rows(refs) == folding.MATCHED_ROWS - 3
    assert batch.stored_rows([("leeds", "r9")]) == folding.MATCHED_ROWS


def test_past_the_reference_cap_only_the_newest_of_the_batchs_count(monkeypatch) -> None:
    monkeypatch.setattr(folding, "MATCHED_ROWS", 2)
    limits = FlagLimits(repeat_lookups=1)
    batch = batch_of(completed(-3, "match", child_pseudonym="y"),  # the third newest
                     completed(-2, "match", actor_id="b"), completed(-1, "match", actor_id="c"))
    record = completed(0, "match", child_pseudonym="z")
    assert batch.stored_rows([("leeds", "r1")]) == 0
    assert batch.matched(record, [("leeds", "r1")], (set(), set()), limits) == (0, 0)
    monkeypatch.setattr(folding, "MATCHED_ROWS", 3)
    assert batch.matched(record, [("leeds", "r1")], (set(), set()), limits) == (0, 1)
