"""Audit flags: each raised with a reason, and only when its rule holds."""

from __future__ import annotations

from datetime import time, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from federator.audit.flags import FlagLimits, History, lookup_flags, no_match_run, out_of_hours

LIMITS = FlagLimits(per_hour=3, per_day=5, no_match_streak=4, child_organisations=3)
WEEKDAY_NOON = "2026-11-18T12:00:00.000+00:00"  # a Wednesday; London is on UTC in November


def record(**extra):
    return {"at": WEEKDAY_NOON, "event": "lookup.requested", "actor_id": "u1",
            "actor_organisation": "Leeds City Council", "basis": {"type": "consent"},
            "scope": "targeted", "child_pseudonym": "ab" * 32, **extra}


def codes(flags):
    return [f["flag"] for f in flags]


def test_an_ordinary_lookup_is_not_flagged():
    assert lookup_flags(record(), History(), LIMITS) == []


def test_safeguarding_basis_is_flagged_with_a_reason():
    [flag] = lookup_flags(record(basis={"type": "safeguarding"}), History(), LIMITS)
    assert flag["flag"] == "safeguarding_basis" and "consent" in flag["reason"]


def test_scope_all_is_flagged():
    assert codes(lookup_flags(record(scope="all"), History(), LIMITS)) == ["scope_all"]


@pytest.mark.parametrize(("before", "flagged"), [(0, False), (2, False), (3, True), (9, True)])
def test_volume_per_hour_counts_this_lookup_too(before, flagged):
    flags = lookup_flags(record(), History(actor_lookups_last_hour=before,
                                           actor_lookups_last_day=before), LIMITS)
    assert ("volume_hour" in codes(flags)) is flagged
    if flagged:
        assert f"{before + 1} lookups" in flags[0]["reason"] and "limit 3" in flags[0]["reason"]


@pytest.mark.parametrize(("before", "flagged"), [(4, False), (5, True)])
def test_volume_per_day(before, flagged):
    flags = lookup_flags(record(), History(actor_lookups_last_day=before), LIMITS)
    assert ("volume_day" in codes(flags)) is flagged


@pytest.mark.parametrize(("at", "flagged"), [
    ("2026-11-18T08:00:00.000+00:00", False),
    ("2026-11-18T17:59:59.000+00:00", False),
    ("2026-11-18T18:00:00.000+00:00", True),
    ("2026-11-18T07:59:00.000+00:00", True),
    ("2026-11-21T12:00:00.000+00:00", True),   # Saturday
    ("2026-11-22T12:00:00.000+00:00", True),   # Sunday
    ("2026-07-15T07:30:00.000+00:00", False),  # 08:30 in London (summer time)
    ("2026-07-15T17:30:00.000+00:00", True),   # 18:30 in London
])
def test_out_of_hours_in_the_configured_zone(at, flagged):
    flags = lookup_flags(record(at=at), History(), LIMITS)
    assert ("out_of_hours" in codes(flags)) is flagged
    if flagged:
        assert "Europe/London" in flags[0]["reason"]


def test_no_match_streak_needs_the_newest_run_to_be_long_enough():
    assert no_match_run([True, True, False, True]) == 2
    broken = History(actor_recent_all_no_match=(True, True, True, False))
    assert "no_match_streak" not in codes(lookup_flags(record(), broken, LIMITS))
    run = History(actor_recent_all_no_match=(True, True, True, True))
    [flag] = lookup_flags(record(), run, LIMITS)
    assert flag["flag"] == "no_match_streak" and "last 4 lookups" in flag["reason"]


def test_a_child_looked_up_by_many_organisations_counts_this_one():
    two_others = History(child_organisations=frozenset({"Bradford", "York"}))
    [flag] = lookup_flags(record(), two_others, LIMITS)
    assert flag["flag"] == "child_many_organisations"
    assert "3 organisations within 72 hours" in flag["reason"]
    same_org = History(child_organisations=frozenset({"Leeds City Council", "York"}))
    assert lookup_flags(record(), same_org, LIMITS) == []


def test_flags_add_up():
    history = History(actor_lookups_last_hour=5, actor_lookups_last_day=5)
    flags = lookup_flags(record(basis={"type": "safeguarding"}, scope="all"), history, LIMITS)
    assert codes(flags) == ["safeguarding_basis", "scope_all", "volume_hour", "volume_day"]
    assert all(f["reason"] for f in flags)


def test_limits_parse_and_name_the_bad_setting():
    limits = FlagLimits.parse(per_hour=1, per_day=2, office_hours="09:30-17:00",
                              timezone="Europe/London", no_match_streak=3,
                              child_organisations=2, child_window_hours=24)
    assert (limits.office_start, limits.office_end) == (time(9, 30), time(17, 0))
    assert limits.child_window == timedelta(hours=24)
    for hours, zone, name in (("9-5", "Europe/London", "OFFICE_HOURS"),
                              ("18:00-08:00", "Europe/London", "OFFICE_HOURS"),
                              ("25:00-26:00", "Europe/London", "OFFICE_HOURS"),
                              ("08:00-18:00", "Mars/Olympus", "TIMEZONE")):
        with pytest.raises(ValueError, match=name):
            FlagLimits.parse(per_hour=1, per_day=2, office_hours=hours, timezone=zone,
                             no_match_streak=3, child_organisations=2, child_window_hours=24)


def test_out_of_hours_uses_local_time():
    from datetime import datetime
    assert out_of_hours(datetime.fromisoformat("2026-07-15T17:30:00+00:00"), LIMITS)


_OUTCOMES = st.sampled_from(["match", "no_match", "no_matches", "timeout", "error",
                             "declined", "unavailable"])


@given(outcomes=st.lists(_OUTCOMES, max_size=8),
       text=st.text(max_size=40), ids=st.lists(st.text(max_size=12), max_size=8))
def test_all_no_match_read_from_the_text_agrees_with_parsing_it(outcomes, text, ids):
    """The body's text is read, not parsed: it must agree with parsing, whatever
    other strings (which may spell "outcome":"no_match" themselves) the record holds."""
    from federator.audit.chain import canonical
    from federator.audit.history import all_no_match

    record = {"event": "lookup.completed", "purpose": text, "complete": False,
              "outcomes": [{"id": (ids[i] if i < len(ids) else f"a{i}") + text,
                            "outcome": o, "latency_ms": 1, "professionals": 0}
                           for i, o in enumerate(outcomes)],
              "note": '"outcome":"no_match"' if not outcomes else text}
    parsed = bool(outcomes) and all(o == "no_match" for o in outcomes)
    assert all_no_match(canonical(record)) is parsed
