"""An endpoint's health: probes of ``GET /health`` (or FHIR ``metadata``), the
stored results of conformance checks, and a summary of the outcomes the broker
recorded for it in ``lookup.completed`` (outcome and latency only: no lookup
content is read or shown).

Probes run from ``federator registry probe`` (cron or a systemd timer, or
``--every N`` in a loop): one prober per deployment, not one thread per broker
process multiplying the load on every authority by the number of workers.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, delete, select

from adapters.base import AdapterFailure, OutboundClient, Target
from federator.lookup.breakers import CLOSED, Breakers, Ticket
from federator.lookup.routing import Endpoint
from federator.names import (
    DECLINED,
    ERROR,
    FAILURES,
    LOOKUP_COMPLETED,
    MATCH,
    NO_MATCH,
    OUTCOMES,
    SPOKE,
    TIMEOUT,
)
from federator.registry.tables import endpoint_checks
from federator.storage import audit_records

log = logging.getLogger(__name__)

KEEP_PER_KIND = 200


@dataclass(frozen=True)
class ProbeResult:
    endpoint_id: str
    ok: bool
    latency_ms: int | None
    detail: str


def percentile(values: Sequence[int], p: float) -> int | None:
    """Nearest-rank percentile (``p`` in 0..100); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * p // 100))
    return int(ordered[int(rank) - 1])


def outcome_summary(records: Iterable[Mapping[str, Any]], endpoint_id: str) -> dict[str, Any]:
    """Counts of each outcome and latency percentiles for one endpoint, from
    ``lookup.completed`` records (only their per-authority outcome entries)."""
    counts = dict.fromkeys(OUTCOMES, 0)
    latencies: list[int] = []
    for record in records:
        for item in record.get("outcomes") or ():
            if item.get("id") != endpoint_id:
                continue
            outcome = item.get("outcome")
            if outcome in counts:
                counts[outcome] += 1
            if outcome in SPOKE and isinstance(
                    item.get("latency_ms"), int):
                latencies.append(item["latency_ms"])
    total = sum(counts.values())
    return {
        "lookups": total, "counts": counts,
        "failure_rate": round(sum(counts[f] for f in FAILURES) / total, 3) if total else None,
        "latency_ms": {"p50": percentile(latencies, 50), "p95": percentile(latencies, 95),
                       "p99": percentile(latencies, 99)},
    }


def daily_summary(records: Iterable[Mapping[str, Any]], endpoint_id: str, *,
                  days: Sequence[str]) -> list[dict[str, Any]]:
    """One row per day (``days``: ISO dates, oldest first) for one endpoint from
    ``lookup.completed`` records: answers, timeouts, errors, lookups it was not
    asked because its circuit breaker was open, and answer-time p50/p95."""
    rows = {day: {"day": day, "answered": 0, "declined": 0, "timeouts": 0, "errors": 0,
                  "circuit_open": 0, "latencies": []} for day in days}
    for record in records:
        row = rows.get(str(record.get("at") or "")[:10])
        if row is None:
            continue
        for item in record.get("outcomes") or ():
            if item.get("id") != endpoint_id:
                continue
            outcome = item.get("outcome")
            if item.get("not_asked") == "circuit_open":
                row["circuit_open"] += 1
            elif outcome in (MATCH, NO_MATCH):
                row["answered"] += 1
            elif outcome == DECLINED:
                row["declined"] += 1
            elif outcome == TIMEOUT:
                row["timeouts"] += 1
            elif outcome == ERROR:
                row["errors"] += 1
            if outcome in SPOKE and isinstance(item.get("latency_ms"), int):
                row["latencies"].append(item["latency_ms"])
    out = []
    for day in days:
        row = rows[day]
        latencies = row.pop("latencies")
        out.append({**row, "p50": percentile(latencies, 50), "p95": percentile(latencies, 95)})
    return out


def probe_path(protocol: str) -> str:
    return "/metadata" if protocol == "fhir-r4" else "/health"


def judge_probe(protocol: str, status: int, body: bytes) -> tuple[bool, str]:
    """Whether a probe's answer shows a working endpoint, and why not."""
    if status != 200:
        return False, f"answered HTTP {status}"
    try:
        data = json.loads(body)
    except ValueError:
        return False, "answer is not JSON"
    if not isinstance(data, dict):
        return False, "answer is not a JSON object"
    if protocol == "fhir-r4":
        ok = data.get("resourceType") == "CapabilityStatement"
        return ok, "ok" if ok else "not a FHIR CapabilityStatement"
    if data.get("status") != "ok":
        return False, "status is not ok"
    if protocol == "federator-lookup/1" and data.get("protocol") != "federator-lookup/1":
        return False, "does not say it speaks federator-lookup/1"
    return True, "ok"


class Health:
    """Stores probe and conformance results; reads outcome summaries."""

    def __init__(self, engine: Engine, *, keep: int = KEEP_PER_KIND) -> None:
        self.engine = engine
        self.keep = keep

    def record(self, endpoint_id: str, kind: str, ok: bool, latency_ms: int | None,
               result: Any, *, target: str | None = None) -> None:
        """``target``: what a conformance check tested (``rules.connection_target``)."""
        at = datetime.now(UTC).isoformat(timespec="milliseconds")
        with self.engine.begin() as conn:
            conn.execute(endpoint_checks.insert().values(
                endpoint_id=endpoint_id, kind=kind, at=at, ok=ok, latency_ms=latency_ms,
                result=json.dumps(result), target=target))
            cutoff = conn.execute(
                select(endpoint_checks.c.id)
                .where(endpoint_checks.c.endpoint_id == endpoint_id,
                       endpoint_checks.c.kind == kind)
                .order_by(endpoint_checks.c.id.desc()).offset(self.keep).limit(1)).scalar()
            if cutoff is not None:
                conn.execute(delete(endpoint_checks).where(
                    endpoint_checks.c.endpoint_id == endpoint_id,
                    endpoint_checks.c.kind == kind, endpoint_checks.c.id <= cutoff))

    def recent(self, endpoint_id: str, kind: str, limit: int = 20) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(endpoint_checks).where(endpoint_checks.c.endpoint_id == endpoint_id,
                                              endpoint_checks.c.kind == kind)
                .order_by(endpoint_checks.c.id.desc()).limit(limit)).mappings().all()
        return [{"at": r["at"], "ok": bool(r["ok"]), "latency_ms": r["latency_ms"],
                 "result": json.loads(r["result"])} for r in rows]

    def outcomes(self, endpoint_id: str, *, hours: int = 24, limit: int = 5000
                 ) -> dict[str, Any]:
        since = (datetime.now(UTC) - timedelta(hours=hours)).isoformat(timespec="milliseconds")
        with self.engine.connect() as conn:
            bodies = conn.execute(
                select(audit_records.c.body)
                .where(audit_records.c.event == LOOKUP_COMPLETED, audit_records.c.at >= since)
                .order_by(audit_records.c.seq.desc()).limit(limit)).scalars().all()
        summary = outcome_summary((json.loads(b) for b in bodies if b), endpoint_id)
        return {"window_hours": hours, **summary}

    def daily(self, endpoint_id: str, *, days: int = 14, limit: int = 50_000
              ) -> list[dict[str, Any]]:
        """``daily_summary`` of the last ``days`` days (UTC), today last; reads at
        most ``limit`` completions (the newest)."""
        today = datetime.now(UTC).date()
        wanted = [(today - timedelta(days=n)).isoformat() for n in range(days - 1, -1, -1)]
        with self.engine.connect() as conn:
            bodies = conn.execute(
                select(audit_records.c.body)
                .where(audit_records.c.event == LOOKUP_COMPLETED,
                       audit_records.c.at >= wanted[0])
                .order_by(audit_records.c.seq.desc()).limit(limit)).scalars().all()
        return daily_summary((json.loads(b) for b in bodies if b), endpoint_id, days=wanted)

    def report(self, endpoint_id: str, status: str, *, hours: int = 24) -> dict[str, Any]:
        probes = self.recent(endpoint_id, "probe")
        last = probes[0] if probes else None
        return {
            "id": endpoint_id, "status": status,
            "healthy": None if last is None else last["ok"],
            "probes": [{"at": p["at"], "ok": p["ok"], "latency_ms": p["latency_ms"],
                        "detail": p["result"]} for p in probes],
            "outcomes": self.outcomes(endpoint_id, hours=hours),
            "daily": self.daily(endpoint_id),
        }


def probe(client: OutboundClient, endpoint: Endpoint, *, timeout_ms: int | None = None,
          clock: Callable[[], float] = time.monotonic) -> ProbeResult:
    """One ``GET`` of the endpoint's health resource, bounded by its time limit."""
    limit = timeout_ms or endpoint.timeout_ms
    target = Target(id=endpoint.id, url=endpoint.url, timeout_ms=limit)
    started = clock()
    try:
        reply = client.request("GET", target, probe_path(endpoint.protocol),
                               deadline=started + limit / 1000)
    except AdapterFailure as e:
        return ProbeResult(endpoint.id, False, None, f"{e.outcome}: {e.detail}")
    ok, detail = judge_probe(endpoint.protocol, reply.status, reply.body)
    return ProbeResult(endpoint.id, ok, reply.elapsed_ms, detail)


def probe_all(client: OutboundClient, endpoints: Iterable[Endpoint], health: Health,
              breakers: Breakers | None = None) -> list[ProbeResult]:
    """Probe every active or suspended endpoint and record the results.

    A failed probe of an active endpoint also counts against its circuit breaker,
    so a dead authority is skipped by lookups sooner. A good probe does not close
    an open breaker: ``/health`` can answer while ``/lookup`` fails, so only a
    lookup's own half-open probe may close it."""
    results = []
    for endpoint in endpoints:
        if endpoint.status not in ("active", "suspended"):
            continue
        result = probe(client, endpoint)
        health.record(endpoint.id, "probe", result.ok, result.latency_ms, result.detail)
        if breakers is not None and not result.ok and endpoint.status == "active":
            breakers.record(endpoint.id, ERROR, Ticket(CLOSED))
        log.info("endpoint probed", extra={"authority": endpoint.id, "ok": result.ok,
                                          "elapsed_ms": result.latency_ms})
        results.append(result)
    return results
