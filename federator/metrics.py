"""Prometheus metrics: what the broker counts, and the text a scrape reads
(``federator.metrics_endpoint`` serves it at ``GET /metrics``).

Labels carry authority ids, outcomes and event names only: never anything
about a child or a person. Under gunicorn the metrics are in multiprocess
mode (``config/gunicorn.conf.py`` sets ``PROMETHEUS_MULTIPROC_DIR`` before
anything imports ``prometheus_client`` and marks dead workers), so one scrape
of any worker sums every worker of that host. ``prometheus_client`` is
imported lazily, on first use, for that reason: ``federator`` may be imported
before gunicorn's config has set the directory.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from federator.names import UNAVAILABLE

#: Circuit breaker states as the gauge's values.
BREAKER_VALUES = {"closed": 0, "probe": 1, "open": 2}
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 8, 15)
APPEND_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)

_lock = threading.Lock()
_metrics: dict[str, Any] = {}
#: Labelled children by (metric, label values): ``labels()`` takes the metric's lock
#: and checks its values on every call, and a lookup makes three such calls per
#: authority (150 at a national fan-out). A child is the same object however often
#: it is asked for, and follows a fork (it checks the pid on each write).
_children: dict[tuple[str, tuple[str, ...]], Any] = {}


def _child(name: str, *values: str) -> Any:
    key = (name, values)
    child = _children.get(key)
    if child is None:
        child = _children.setdefault(key, _m()[name].labels(*values))
    return child


def _m() -> dict[str, Any]:
    if _metrics:
        return _metrics
    with _lock:
        if not _metrics:
            from prometheus_client import Counter, Gauge, Histogram

            _metrics.update(
                lookups=Counter("federator_lookups", "Lookups by outcome: complete, partial, "
                                "refused (bad input or policy), unavailable (audit or state "
                                "down), rate_limited", ["outcome"]),
                authority_outcomes=Counter(
                    "federator_authority_outcomes", "Each authority's outcome per lookup",
                    ["authority", "outcome"]),
                authority_latency=Histogram(
                    "federator_authority_latency_seconds",
                    "Time for an authority to answer (or to be given up on)",
                    ["authority"], buckets=LATENCY_BUCKETS),
                breaker=Gauge("federator_breaker_state",
                              "Circuit breaker per authority: 0 closed, 1 half-open, 2 open",
                              ["authority"], multiprocess_mode="mostrecent"),
                audit_append=Histogram("federator_audit_append_seconds",
                                       "Time to append one audit record", ["event"],
                                       buckets=APPEND_BUCKETS),
                rate_limited=Counter("federator_rate_limited",
                                     "Requests refused by the lookup budgets",
                                     ["endpoint"]),
                audit_alerts=Counter("federator_audit_alerts",
                                     "Audit records raising an alert for auditors "
                                     "(sustained_volume, budget_reached, entry_rejected)",
                                     ["flag"]),
            )
    return _metrics


def lookup(outcome: str) -> None:
    _child("lookups", outcome).inc()


def authority(authority_id: str, outcome: str, latency_ms: int | float) -> None:
    _child("authority_outcomes", authority_id, outcome).inc()
    if outcome != UNAVAILABLE:  # never called: no latency to report
        _child("authority_latency", authority_id).observe(max(0.0, latency_ms) / 1000)


def breaker(authority_id: str, state: str) -> None:
    _child("breaker", authority_id).set(BREAKER_VALUES.get(state, 0))


def audit_append(event: str, seconds: float) -> None:
    _child("audit_append", event.split(".")[0]).observe(seconds)


def audit_alert(flag: str) -> None:
    _m()["audit_alerts"].labels(flag).inc()


def rate_limited(endpoint: str | None) -> None:
    _m()["rate_limited"].labels(endpoint or "unknown").inc()


def exposition() -> tuple[bytes, str]:
    """The text format for every worker of this process group."""
    from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest

    _m()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
