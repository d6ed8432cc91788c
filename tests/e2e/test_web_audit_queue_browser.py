"""The auditor's casework in a real browser (Debian's Chromium through
Playwright), signed in through the demo identity provider: the review queue,
a case reviewed through its form (an error first), the lookups list, a
practitioner's page and the overview, axe-core (WCAG 2.2 AA) on each; the
charts drawn with JavaScript off; screenshots saved by ``scripts/screenshots``
only."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import pytest
import requests
from support.browser import axe_violations, needs_node_modules, new_page, shot

from federator.config import Settings
from federator.demo.federation import Federation, start_federation

pytestmark = pytest.mark.integration

PURPOSE = "Assessment under section 17: finding services already involved"


@pytest.fixture(scope="module")
def fed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Federation]:
    needs_node_modules()
    federation = start_federation(tmp_path_factory.mktemp("web-audit-queue") / "demo",
                                  base=Settings(deadline_default_ms=3000))
    child = next(c for c in federation.world.children if c.known_to and not c.shielded)
    token = federation.token("practitioner")
    for basis in ({"type": "consent", "given_by": "parent", "reference": "CASE-1",
                   "given_on": (date.today() - timedelta(days=1)).isoformat()},
                  {"type": "safeguarding", "justification":
                   "Risk of significant harm if the family were told of this enquiry."}):
        response = requests.post(f"{federation.broker.url}/api/v1/lookups", timeout=30,
                                 headers={"Authorization": f"Bearer {token}"},
                                 json={"child": child.identity(), "purpose": PURPOSE,
                                       "basis": basis, "include_past": True})
        assert response.status_code == 200, response.text
    yield federation
    federation.stop()


def sign_in_as(page: Any, fed: Federation, persona: str, path: str) -> None:
    page.goto(f"{fed.broker.url}{path}")
    assert page.url.startswith(fed.idp.url), page.url
    page.locator(f'button[name="persona"][value="{persona}"]').click()
    page.wait_for_url(f"{fed.broker.url}{path}")


def checked(page: Any, name: str) -> None:
    assert axe_violations(page) == [], name
    shot(page, name)


def reflows(page: Any) -> None:
    """WCAG 1.4.10 at 320 CSS px: no sideways scrolling (the case page and the
    overview; the lookup tables are two-dimensional content, which may scroll)."""
    page.set_viewport_size({"width": 320, "height": 800})
    page.reload()
    assert page.evaluate("document.documentElement.scrollWidth") <= 320, page.url
    page.set_viewport_size({"width": 1100, "height": 900})
    page.reload()


def test_the_review_queue_a_case_and_the_charts(fed: Federation, browser: Any) -> None:
    page, problems = new_page(browser)
    sign_in_as(page, fed, "auditor", "/audit/queue")
    assert page.locator("h1").inner_text() == "Review queue"
    queue = page.locator("table").inner_text()
    assert "Safeguarding basis: consent not sought" in queue and "Open" in queue
    checked(page, "audit-queue")

    # a case: an error first (no outcome), then the review saved
    page.locator("tbody tr a", has_text="Lookup").first.click()
    page.wait_for_url("**/audit/cases/*")
    assert "Nobody has reviewed this lookup yet." in page.locator("main").inner_text()
    checked(page, "audit-case")
    page.check("#review-state-referred")
    page.click("#save-review")
    page.locator(".govuk-error-summary").wait_for()
    assert page.title().startswith("Error:")
    page.locator(".govuk-error-summary a").first.click()
    assert page.evaluate("document.activeElement.id") == "review-outcome"
    assert axe_violations(page) == []
    page.fill("#review-outcome", "Referred to the designated officer")
    page.fill("#review-note", "Manager informed by phone")
    page.click("#save-review")
    page.locator("#review-steps").wait_for()
    steps = page.locator("#review-steps").inner_text()
    assert "Referred: Referred to the designated officer" in steps and "auditor" in steps
    assert "Referred" in page.locator("#case-state").inner_text()
    checked(page, "audit-case-reviewed")
    reflows(page)

    # every lookup, one row each
    page.click("nav >> text=Lookups")
    page.wait_for_url("**/audit/lookups")
    assert page.locator("tbody tr").count() == 2  # two lookups: four records
    checked(page, "audit-lookups")

    # a practitioner's page, from a row
    page.locator("tbody tr a", has_text="demo-practitioner-1").first.click()
    page.wait_for_url("**/audit/practitioner?actor=*")
    assert page.locator("svg.app-chart[role=img]").count() == 4
    checked(page, "audit-practitioner")

    # the overview: charts with their tables
    page.click("nav >> text=Overview")
    page.wait_for_url("**/audit/overview")
    assert page.locator("svg.app-chart[role=img]").count() == 4
    assert page.locator("#daily-table tbody tr").count() == 30
    checked(page, "audit-overview")
    reflows(page)
    assert not [p for p in problems if "Content Security Policy" in p], problems
    page.context.close()


def test_the_charts_need_no_javascript(fed: Federation, browser: Any) -> None:
    page, _ = new_page(browser, javascript=False)
    sign_in_as(page, fed, "auditor", "/audit/overview")
    chart = page.locator("#overview-daily")
    box = chart.bounding_box()
    assert box is not None and box["height"] > 100 and box["width"] > 300
    bars = page.locator("#overview-daily rect[data-value]")
    assert bars.count() == 30
    tallest = max(float(bars.nth(i).get_attribute("height") or 0) for i in range(30))
    assert tallest > 0
    name = page.evaluate("document.getElementById('overview-daily-title').textContent")
    assert name == "Lookups a day"  # (axe-core ran on this page with JavaScript above)
    page.context.close()
