"""The lookup budget's rules: which limits a lookup spends, in which order, what
the practitioner is told; the in-process counters; the sustained-volume flag."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from federator.audit.flags import FlagLimits, History, hourly_counts, lookup_flags, sustained
from federator.auth.principal import Principal
from federator.lookup.budget import (
    BudgetPolicy,
    LookupBudget,
    OverBudget,
    message,
    refused_limits,
    retry_after_s,
    sent_limits,
)
from federator.state import SharedState

POLICY = BudgetPolicy(per_minute=2, per_day=3, refused_per_minute=1, refused_per_day=5,
                      organisation_per_minute=3, organisation_per_day=50)


def person(pid: str = "p1", organisation: str = "Leeds") -> Principal:
    return Principal(id=pid, name="P", roles=("practitioner",), organisation=organisation)


def test_the_practitioner_is_checked_before_the_organisation() -> None:
    limits = sent_limits(person(), POLICY)
    assert [(lim.scope, lim.who, lim.text) for lim in limits] == [
        ("practitioner", "p1", "2 per minute"), ("practitioner", "p1", "3 per day"),
        ("organisation", "Leeds", "3 per minute"), ("organisation", "Leeds", "50 per day")]
    assert [lim.window_s for lim in limits] == [60, 86400, 60, 86400]
    # no organisation known (no claim, or roles at several): one ceiling they all
    # share, not none (issue 22 review: two organisations' roles escaped the ceiling)
    unknown = sent_limits(person(organisation=""), POLICY)
    assert [(lim.scope, lim.who) for lim in unknown] == [
        ("practitioner", "p1"), ("practitioner", "p1"), ("organisation", ""),
        ("organisation", "")]
    assert "not known" in message(unknown[2], 7)
    assert [lim.text for lim in refused_limits(person(), POLICY)] == [
        "1 per minute", "5 per day"]


def test_retry_after_is_whole_seconds_and_never_zero() -> None:
    assert retry_after_s(100.2, 100.0) == 1
    assert retry_after_s(100.0, 100.0) == 1
    assert retry_after_s(159.1, 100.0) == 60


def test_in_process_budget_counts_across_calls_and_notes_the_first_refusal_once() -> None:
    budget = LookupBudget(POLICY, SharedState(None))
    budget.spend(person())
    budget.spend(person())
    with pytest.raises(OverBudget) as first:
        budget.spend(person())
    with pytest.raises(OverBudget) as second:
        budget.spend(person())
    assert (first.value.first, second.value.first) == (True, False)
    body = first.value.body()
    assert (body["code"], body["scope"], body["limit"]) == (429, "practitioner",
                                                            "2 per minute")
    assert 1 <= int(str(body["retry_after"])) <= 60
    assert "every way of asking" in str(body["message"])
    # the organisation's third lookup this minute; its fourth is refused for everyone
    budget.spend(person("p2"))
    with pytest.raises(OverBudget) as ceiling:
        budget.spend(person("p3"))
    assert ceiling.value.limit.scope == "organisation"
    assert "organisation" in str(ceiling.value)
    budget.spend(person("p9", "York"))
    # refused lookups are their own count
    budget.spend_refused(person())
    with pytest.raises(OverBudget) as refused:
        budget.spend_refused(person())
    assert refused.value.limit.scope == "refused" and refused.value.first


def test_forgetting_the_note_lets_the_next_refusal_be_recorded() -> None:
    budget = LookupBudget(POLICY, SharedState(None))
    budget.spend_refused(person())
    with pytest.raises(OverBudget) as first:
        budget.spend_refused(person())
    budget.forget_noted(first.value.limit)
    with pytest.raises(OverBudget) as again:
        budget.spend_refused(person())
    assert again.value.first


NOW = datetime(2026, 12, 3, 11, 0, tzinfo=UTC)
LIMITS = FlagLimits(sustained_hours=3, sustained_per_hour=4)


def test_hourly_counts_put_each_lookup_in_its_hour_before_now() -> None:
    ats = [NOW - timedelta(minutes=m) for m in (1, 59, 61, 150, 179, 181, 600)]
    assert hourly_counts(ats, NOW, 3) == [2, 1, 2]


@pytest.mark.parametrize(("hourly", "flagged"), [
    ((3, 4, 4), True),    # this lookup makes the fourth in the hour ending now
    ((2, 4, 4), False),
    ((3, 4, 3), False),   # one quiet hour breaks it: a burst is not sustained
    ((3, 4), False),      # not enough history
    ((9, 0, 9), False),
])
def test_sustained_volume_needs_every_hour_busy(hourly: tuple[int, ...], flagged: bool) -> None:
    assert sustained(hourly, LIMITS) is flagged
    record = {"basis": {"type": "consent"}, "at": "2026-12-03T11:00:00+00:00"}
    codes = {f["flag"] for f in lookup_flags(record, History(actor_hourly=hourly), LIMITS)}
    assert ("sustained_volume" in codes) is flagged


def test_sustained_volume_can_be_turned_off() -> None:
    assert not sustained((99, 99, 99), FlagLimits(sustained_hours=0))


def test_an_alert_counts_the_window_and_says_when_there_may_be_more() -> None:
    from federator.audit.alerts import ROWS, summarise
    since = NOW - timedelta(hours=24)
    rows = [((NOW - timedelta(hours=h)).isoformat(), f"p{h % 2}") for h in (1, 2, 30)]
    alert = summarise("budget_reached", rows, since)
    assert alert is not None
    assert (alert.records, alert.practitioners, alert.at_least) == (2, 2, False)
    assert summarise("budget_reached", rows[2:], since) is None
    many = [(NOW.isoformat(), "p1")] * ROWS
    full = summarise("sustained_volume", many, since)
    assert full is not None and full.at_least and full.practitioners == 1
