"""The auditor's and authority administrator's pages in a real browser (Debian's
Chromium through Playwright), signed in through the demo identity provider:
every auditor page visited, axe-core (WCAG 2.2 AA) on each, downloads taken,
screenshots for README (saved by ``scripts/screenshots`` only)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from support.browser import axe_violations, needs_node_modules, new_page, shot

from federator.config import Settings
from federator.demo.federation import Federation, start_federation
from federator.demo.world import Child

pytestmark = pytest.mark.integration

PURPOSE = "Assessment under section 17: finding services already involved"


@pytest.fixture(scope="module")
def fed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Federation]:
    needs_node_modules()
    federation = start_federation(tmp_path_factory.mktemp("web-audit") / "demo",
                                  base=Settings(deadline_default_ms=3000,
                                                audit_checkpoint_every=5))
    yield federation
    federation.stop()


@pytest.fixture(scope="module")
def child(fed: Federation) -> Child:
    """A child looked up twice by a practitioner: on consent, and on safeguarding."""
    found: Child = next(c for c in fed.world.children if c.known_to and not c.shielded)
    token = fed.token("practitioner")
    for basis in ({"type": "consent", "given_by": "parent", "reference": "CASE-1",
                   "given_on": (date.today() - timedelta(days=1)).isoformat()},
                  {"type": "safeguarding", "justification":
                   "Risk of significant harm if the family were told of this enquiry."}):
        response = requests.post(f"{fed.broker.url}/api/v1/lookups", timeout=30,
                                 headers={"Authorization": f"Bearer {token}"},
                                 json={"child": found.identity(), "purpose": PURPOSE,
                                       "basis": basis, "include_past": True})
        assert response.status_code == 200, response.text
    return found


def sign_in_as(page: Any, fed: Federation, persona: str, path: str) -> None:
    page.goto(f"{fed.broker.url}{path}")
    assert page.url.startswith(fed.idp.url), page.url
    page.locator(f'button[name="persona"][value="{persona}"]').click()
    page.wait_for_url(f"{fed.broker.url}{path}")


def checked(page: Any, name: str) -> None:
    assert axe_violations(page) == [], name
    shot(page, name)


def test_auditor_pages_in_a_real_browser(fed: Federation, browser: Any,
                                         child: Child) -> None:
    page, problems = new_page(browser)
    sign_in_as(page, fed, "auditor", "/audit/records")
    assert page.locator("h1").inner_text() == "Audit trail"
    assert "Verified" in page.locator("#trail-status").inner_text()
    checked(page, "audit-records")

    # flagged only: the safeguarding lookup, with its reason
    page.check("#filter-flagged")
    page.select_option("#filter-event", "lookup.requested")
    page.click("#apply-filters")
    page.wait_for_url("**flagged=true**")
    table = page.locator("table").inner_text()
    assert "Safeguarding basis: consent was not sought." in table
    checked(page, "audit-records-flagged")

    # a bad filter is named
    page.fill("#filter-from", "last week")
    page.click("#apply-filters")
    page.locator(".govuk-error-summary").wait_for()
    assert page.title().startswith("Error:")
    assert axe_violations(page) == []

    # record detail
    page.goto(f"{fed.broker.url}/audit/records?flagged=true&event=lookup.requested")
    page.locator("tbody tr a").first.click()
    page.wait_for_url("**/audit/records/*")
    assert "consent was not sought" in page.locator("#record-flags").inner_text()
    checked(page, "audit-record")

    # redact a free text field of it, with a reason (issue 18)
    record_url = page.url
    page.locator("#record-redact-links a").first.click()
    page.wait_for_url("**/redact/*")
    checked(page, "audit-redact")
    page.click("button.govuk-button--warning")
    page.locator(".govuk-error-summary").wait_for()
    assert "Say why you are redacting this text" in page.locator(
        ".govuk-error-summary").inner_text()
    assert axe_violations(page) == []
    page.fill("#reason", "Names a third party")
    page.click("button.govuk-button--warning")
    page.wait_for_url(record_url)
    assert "Names a third party" in page.locator("#record-redactions").inner_text()
    checked(page, "audit-record-redacted")

    # was this child looked up?
    page.click("text=Was this child looked up?")
    page.wait_for_url("**/audit/check-child")
    assert axe_violations(page) == []
    page.fill("#nhs_number", "943 476 5918")
    page.click("#submit")
    page.locator(".govuk-error-summary").wait_for()
    assert "check digit" in page.locator(".govuk-error-summary").inner_text()
    assert axe_violations(page) == []
    page.fill("#nhs_number", child.nhs_number)
    page.fill("#reason", "Complaint from the family")
    page.click("#submit")
    page.locator("#check-results").wait_for()
    assert page.locator("#check-results").inner_text().startswith("Records found:")
    assert page.locator("tbody tr").count() >= 4  # two lookups, each requested + completed
    checked(page, "audit-check-child")

    # export, with the checkpoint
    page.click("text=Export")
    page.wait_for_url("**/audit/export")
    checked(page, "audit-export")
    today = date.today()
    page.fill("#export-from", today.isoformat())
    page.fill("#export-to", today.isoformat())
    with page.expect_download() as download:
        page.click("#export-submit")
    rows = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text())))
    assert {r["event"] for r in rows} >= {"lookup.requested", "lookup.completed"}

    # the whole-trail check
    page.click("#verify-trail")
    page.wait_for_url("**/audit/export")
    assert "Whole trail last checked: 20" in page.locator("#trail-status").inner_text()

    # subject access: the report, the print view, a download
    page.click("text=Subject access")
    page.wait_for_url("**/audit/subject-access")
    assert axe_violations(page) == []
    page.fill("#nhs_number", child.nhs_number)
    page.fill("#given_name", child.given_name)
    page.fill("#family_name", child.family_name)
    page.fill("#date_of_birth-day", str(child.date_of_birth.day))
    page.fill("#date_of_birth-month", str(child.date_of_birth.month))
    page.fill("#date_of_birth-year", str(child.date_of_birth.year))
    page.fill("#request_reference", "SAR-2026-0142")
    page.click("#submit")
    page.locator("#sar-report").wait_for()
    assert "NHS number; and by first name, last name and date of birth" in \
        page.locator("#sar-searched").inner_text()
    checked(page, "audit-subject-access")
    with page.expect_download() as download:
        page.click("#sar-csv")
    assert "SAR-2026-0142" in download.value.suggested_filename
    page.click("#sar-print")
    page.locator("#print-reference").wait_for()
    assert page.locator("h1").inner_text() == "Who asked about your child"
    checked(page, "subject-access-print")

    assert not [p for p in problems if "Content Security Policy" in p or "Refused" in p], \
        problems
    page.context.close()


def test_authority_admin_page_in_a_real_browser(fed: Federation, browser: Any,
                                                child: Child) -> None:
    page, _ = new_page(browser)
    authority = child.known_to[0]
    sign_in_as(page, fed, f"authority-admin:{authority}", "/authority/lookups")
    assert page.locator("h1").inner_text() == "Lookups that reached your authority"
    assert PURPOSE in page.locator("#authority-lookups").inner_text()
    checked(page, "authority-lookups")
    refused = page.goto(f"{fed.broker.url}/audit/records")
    assert refused is not None and refused.status == 403
    page.context.close()
