"""The auditor's overview and a practitioner's page (role ``auditor``): the
figures people would rather look at than read, drawn on the server as SVG
(``federator.web.charts``) with the same figures in a table beside each.

Both are audited before they show anything (``audit.overview_viewed``,
``audit.practitioner_viewed``)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from flask import current_app, request

from federator.api.audit import audited
from federator.audit import case_queries as cq
from federator.audit.case_schemas import MAX_DAYS, PeriodQuery
from federator.audit.casework import flag_words
from federator.audit.patterns import (
    Activity,
    by_organisation,
    flag_counts,
    out_of_hours_by_week,
    overall_share,
    per_day,
    per_hour,
)
from federator.auth.access import require_page_roles
from federator.names import AUDIT_OVERVIEW_VIEWED, AUDIT_PRACTITIONER_VIEWED
from federator.web.audit_pages import auditor_page
from federator.web.blueprint import PageBlueprint
from federator.web.casework_view import read_query, registry_names, row_view
from federator.web.charts import bar_chart, column_chart

blp = require_page_roles(PageBlueprint("web_audit_overview", __name__,
                                       template_folder="templates"), "auditor")

# its menu entry is with the queue's (``audit_queue_pages``), in their order

PERIOD = ["from", "to"]
DEFAULT_DAYS = 30


def _services() -> Any:
    return current_app.extensions["federator"]


def _period(loaded: dict[str, Any]) -> tuple[date, date] | str:
    """The days asked for (the last 30 by default), or why they cannot be drawn."""
    def day(value: Any) -> date | None:
        return value.date() if isinstance(value, datetime) else value

    end = day(loaded.get("to")) or datetime.now(UTC).date()
    start = day(loaded.get("from_")) or end - timedelta(days=DEFAULT_DAYS - 1)
    if (end - start).days + 1 > MAX_DAYS:
        return f"Choose at most {MAX_DAYS} days."
    return start, end


def _charts(items: list[Activity], start: date, end: date, *, name: str) -> dict[str, Any]:
    """Each chart with its table's figures: ``(svg, [(label, figures...)])``."""
    limits = _services().trail.flag_limits
    daily = [(f"{d.day} {d:%b}", n) for d, n in per_day(items, start, end, limits.timezone)]
    flags = [(flag_words(f), n) for f, n in flag_counts(items)]
    weeks = out_of_hours_by_week(items, start, end, limits)
    share = overall_share(weeks)
    hours = limits.office_start.strftime("%H:%M") + " to " + limits.office_end.strftime("%H:%M")
    return {
        "daily": (column_chart(f"{name}-daily", "Lookups a day", daily, unit="lookups"),
                  daily),
        "flags": (bar_chart(f"{name}-flags", "Flags by kind", flags, unit="flags"), flags),
        "out_of_hours": (column_chart(
            f"{name}-out-of-hours", "Share of lookups made out of hours, by week",
            [(w.label, w.percent) for w in weeks], unit="%", top=100, suffix="%",
            desc=f"{share.percent}% of {share.total} lookups were made outside {hours} "
                 f"Monday to Friday ({limits.timezone})."),
            [(w.label, w.total, w.part, w.percent) for w in weeks]),
        "out_of_hours_all": share,
        "office_hours": hours,
    }


@blp.route("/audit/overview")
def overview() -> Any:
    loaded, values, summary, errors = read_query(PeriodQuery(), request.args, PERIOD)
    period = _period(loaded) if loaded is not None else None
    if isinstance(period, str):
        summary, errors = [{"text": period, "href": "#filter-from"}], {"from": [period]}
    if not isinstance(period, tuple):
        return auditor_page("web/audit/overview.html", 422, values=values, errors=summary,
                            field_errors=errors, charts=None, start=None, end=None,
                            title="Error: Overview")
    start, end = period
    audited(AUDIT_OVERVIEW_VIEWED, query={"from": start.isoformat(), "to": end.isoformat()},
            via="web")
    items = cq.activity(_services().trail.engine, start, end)
    charts = _charts(items, start, end, name="overview")
    organisations = by_organisation(items)
    charts["organisations"] = (
        bar_chart("overview-organisations", "Flagged lookups by organisation",
                  [(o.organisation, o.flagged) for o in organisations[:15]],
                  unit="flagged lookups"),
        [(o.organisation, o.lookups, o.flagged) for o in organisations])
    return auditor_page("web/audit/overview.html", values=values, errors=[], field_errors={},
                        charts=charts, start=start, end=end, total=len(items),
                        flagged=sum(1 for a in items if a.flags), title="Overview")


@blp.route("/audit/practitioner")
def practitioner() -> Any:
    loaded, values, summary, errors = read_query(PeriodQuery(), request.args,
                                                 ["actor", *PERIOD])
    period = _period(loaded) if loaded is not None else None
    if isinstance(period, str):
        summary, errors = [{"text": period, "href": "#filter-from"}], {"from": [period]}
    actor = (loaded or {}).get("actor")
    context = {"values": values, "charts": None, "rows": [], "actor": actor, "start": None,
               "end": None, "hours": None, "total": 0, "flagged": 0, "organisations": []}
    if not isinstance(period, tuple) or not actor:
        return auditor_page("web/audit/practitioner.html", 422 if summary else 200,
                            errors=summary, field_errors=errors,
                            title="Error: A practitioner" if summary else "A practitioner",
                            **context)
    start, end = period
    audited(AUDIT_PRACTITIONER_VIEWED, actor=actor,
            query={"from": start.isoformat(), "to": end.isoformat()}, via="web")
    engine = _services().trail.engine
    items = cq.activity(engine, start, end, actor=actor)
    charts = _charts(items, start, end, name="practitioner")
    hours = per_hour(items, _services().trail.flag_limits.timezone)
    charts["hours"] = (column_chart("practitioner-hours", "Lookups by hour of the day",
                                    hours, unit="lookups"), hours)
    rows, _ = cq.lookup_page(engine, cq.LookupFilter(actor=actor, start=start, end=end),
                             limit=50)
    reviews = cq.reviews(engine, after=min((r.seq for r in rows), default=0))
    names, areas = registry_names(_services().registry.all())
    context.update(
        charts=charts, start=start, end=end, total=len(items),
        flagged=sum(1 for a in items if a.flags),
        organisations=sorted({a.organisation for a in items if a.organisation}),
        rows=[row_view(r, names, areas, reviews.get(r.seq)) for r in rows])
    return auditor_page("web/audit/practitioner.html", errors=[], field_errors={},
                        title=f"Practitioner {actor}", **context)
