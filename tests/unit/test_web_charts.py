"""The server-drawn SVG charts (``federator.web.charts``) and the patterns they
draw (``federator.audit.patterns``): pure functions, checked on their output."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, date, datetime

from federator.audit.flags import FlagLimits
from federator.audit.patterns import (
    Activity,
    by_organisation,
    flag_counts,
    out_of_hours_by_week,
    overall_share,
    per_day,
    per_hour,
)
from federator.web.charts import bar_chart, column_chart, nice_top

SVG = "{http://www.w3.org/2000/svg}"


def parsed(markup: str) -> ET.Element:
    return ET.fromstring(str(markup))  # noqa: S314 - our own output


def bars(svg: ET.Element) -> list[tuple[str, float, float]]:
    return [(r.get("data-label") or "", float(r.get("data-value") or 0),
             float(r.get("height") or 0) if r.get("data-value") else 0)
            for r in svg.iter(f"{SVG}rect")]


def test_a_column_chart_is_a_named_described_image_with_one_bar_per_figure():
    svg = parsed(column_chart("daily", "Lookups a day", [("1 Dec", 4), ("2 Dec", 0),
                                                         ("3 Dec", 10)], unit="lookups"))
    assert svg.get("role") == "img"
    assert svg.get("aria-labelledby") == "daily-title daily-desc"
    assert svg.find(f"{SVG}title").text == "Lookups a day"  # type: ignore[union-attr]
    desc = svg.find(f"{SVG}desc").text  # type: ignore[union-attr]
    assert desc == "14 lookups in all; the highest is 3 Dec, with 10."
    drawn = bars(svg)
    assert [(label, value) for label, value, _ in drawn] == [
        ("1 Dec", 4), ("2 Dec", 0), ("3 Dec", 10)]
    heights = [h for _, _, h in drawn]
    assert heights[1] == 0 and abs(heights[0] / heights[2] - 0.4) < 0.01  # axis top is 10


def test_a_percentage_keeps_its_axis_and_labels_thin_out():
    svg = parsed(column_chart("share", "Out of hours", [(f"d{n}", 50) for n in range(30)],
                              unit="%", top=100, suffix="%"))
    texts = [t.text for t in svg.iter(f"{SVG}text")]
    assert "100%" in texts
    assert sum(1 for t in texts if t and t.startswith("d")) == 10  # every third of 30
    assert {h for _, _, h in bars(svg)} == {204 / 2}


def test_a_bar_chart_escapes_labels_and_draws_nothing_for_no_data():
    svg = parsed(bar_chart("orgs", "By organisation", [("<script>alert(1)</script>", 3),
                                                      ("Leeds & Bradford", 6)], unit="flags"))
    assert [(label, value) for label, value, _ in bars(svg)] == [
        ("<script>alert(1)</script>", 3), ("Leeds & Bradford", 6)]
    markup = str(bar_chart("o", "T", [("<b>", 1)], unit="x"))
    assert "<b>" not in markup and "&lt;b&gt;" in markup
    empty = parsed(bar_chart("none", "Flags by kind", [], unit="flags"))
    assert bars(empty) == []
    assert empty.find(f"{SVG}desc").text == "No flags in this period."  # type: ignore[union-attr]
    zero = parsed(column_chart("z", "Z", [("a", 0), ("b", 0)], unit="lookups"))
    assert [h for _, _, h in bars(zero)] == [0, 0]


def test_nice_axis_tops():
    assert [nice_top(v) for v in (0, 1, 3, 7, 10, 11, 260)] == [1, 1, 5, 10, 10, 20, 500]


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


ITEMS = [
    Activity(1, at("2026-11-30T09:00"), "lookup", "Leeds", "p1", frozenset({"scope_all"})),
    Activity(2, at("2026-11-30T23:30"), "lookup", "Leeds", "p1", frozenset({"out_of_hours"})),
    Activity(3, at("2026-12-02T12:00"), "refused", "Bradford", "p2"),
    Activity(4, at("2026-12-06T10:00"), "lookup", "", "p3",
             frozenset({"out_of_hours", "scope_all"})),  # a Sunday
    # 23:30 UTC on 1 July is 00:30 on 2 July in London
    Activity(5, at("2026-07-01T23:30"), "lookup", "Leeds", "p1"),
]


def test_patterns_count_local_days_hours_flags_and_organisations():
    assert per_day(ITEMS[:4], date(2026, 11, 30), date(2026, 12, 2), "Europe/London") == [
        (date(2026, 11, 30), 2), (date(2026, 12, 1), 0), (date(2026, 12, 2), 1)]
    assert per_day(ITEMS[4:], date(2026, 7, 2), date(2026, 7, 2), "Europe/London") == [
        (date(2026, 7, 2), 1)]
    hours = dict(per_hour(ITEMS, "Europe/London"))
    assert hours["00"] == 1 and hours["23"] == 1 and hours["09"] == 1 and len(hours) == 24
    assert flag_counts(ITEMS) == [("out_of_hours", 2), ("scope_all", 2)]
    assert [(c.organisation, c.lookups, c.flagged) for c in by_organisation(ITEMS)] == [
        ("Leeds", 3, 2), ("Not recorded", 1, 1), ("Bradford", 1, 0)]


def test_the_out_of_hours_share_by_week():
    shares = out_of_hours_by_week(ITEMS[:4], date(2026, 11, 30), date(2026, 12, 13),
                                  FlagLimits())
    assert [(s.label, s.total, s.part, s.percent) for s in shares] == [
        ("w/c 30 Nov", 4, 2, 50), ("w/c 7 Dec", 0, 0, 0)]
    assert overall_share(shares).percent == 50
