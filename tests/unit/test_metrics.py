"""federator.metrics: who may read them, and what the samples say."""

from __future__ import annotations

import re

from federator import metrics
from federator.metrics_endpoint import may_read


def test_a_token_is_needed_when_one_is_set() -> None:
    token = "t" * 40
    assert may_read(token, f"Bearer {token}", production=True)
    assert not may_read(token, "Bearer wrong", production=True)
    assert not may_read(token, "", production=False)
    assert not may_read(token, token, production=True)  # the scheme is required


def test_without_a_token_only_development_may_read() -> None:
    assert may_read("", "", production=False)
    assert not may_read("", "Bearer anything", production=True)


def _sample(text: str, name: str, labels: str) -> float:
    match = re.search(rf"^{re.escape(name)}\{{{re.escape(labels)}\}} (\S+)$", text, re.M)
    return float(match.group(1)) if match else 0.0


def test_samples_carry_authority_ids_and_outcomes_only() -> None:
    before, _ = metrics.exposition()
    metrics.lookup("partial")
    metrics.authority("unit-metrics-cs", "timeout", 1500)
    metrics.authority("unit-metrics-cs", "unavailable", 0)
    metrics.breaker("unit-metrics-cs", "open")
    metrics.audit_append("lookup.requested", 0.004)
    metrics.rate_limited("lookups.create_lookup")
    after = metrics.exposition()[0].decode()
    old = before.decode()
    for name, labels, step in [
        ("federator_lookups_total", 'outcome="partial"', 1),
        ("federator_authority_outcomes_total", 'authority="unit-metrics-cs",outcome="timeout"',
         1),
        ("federator_authority_latency_seconds_count", 'authority="unit-metrics-cs"', 1),
        ("federator_authority_latency_seconds_sum", 'authority="unit-metrics-cs"', 1.5),
        ("federator_audit_append_seconds_count", 'event="lookup"', 1),
        ("federator_rate_limited_total", 'endpoint="lookups.create_lookup"', 1),
    ]:
        assert _sample(after, name, labels) - _sample(old, name, labels) == step, name
    assert _sample(after, "federator_breaker_state", 'authority="unit-metrics-cs"') == 2


def test_each_label_set_keeps_its_own_sample_however_often_it_is_written() -> None:
    """The labelled children are cached (federator.metrics._child): every write
    still lands on its own labels, and the last breaker state is the one shown."""
    old = metrics.exposition()[0].decode()
    for _ in range(3):
        metrics.authority("unit-metrics-a", "no_match", 10)
        metrics.authority("unit-metrics-b", "match", 20)
    metrics.authority("unit-metrics-a", "error", 30)
    metrics.breaker("unit-metrics-a", "open")
    metrics.breaker("unit-metrics-a", "closed")
    metrics.breaker("unit-metrics-b", "probe")
    after = metrics.exposition()[0].decode()
    outcomes = "federator_authority_outcomes_total"
    for labels, step in [('authority="unit-metrics-a",outcome="no_match"', 3),
                         ('authority="unit-metrics-b",outcome="match"', 3),
                         ('authority="unit-metrics-a",outcome="error"', 1)]:
        assert _sample(after, outcomes, labels) - _sample(old, outcomes, labels) == step
    count = "federator_authority_latency_seconds_count"
    assert _sample(after, count, 'authority="unit-metrics-a"') - \
        _sample(old, count, 'authority="unit-metrics-a"') == 4
    assert _sample(after, "federator_breaker_state", 'authority="unit-metrics-a"') == 0
    assert _sample(after, "federator_breaker_state", 'authority="unit-metrics-b"') == 1
