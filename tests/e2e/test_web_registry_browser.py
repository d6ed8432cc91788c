"""The registry pages in a real browser (Debian's Chromium through Playwright,
signed in through the demo identity provider): an authority admin registers
(errors first), tests and changes its endpoint; a broker admin approves it
seeing the test result. axe-core (WCAG 2.2 AA) on every page."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import delete
from support.browser import axe_violations, needs_node_modules, new_page, shot

from federator.demo.federation import Federation, start_federation
from federator.storage import endpoints

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def federation(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Federation]:
    needs_node_modules()
    fed = start_federation(tmp_path_factory.mktemp("registry-web") / "demo", authorities=4)
    yield fed
    fed.stop()


def sign_in_as(page: Any, fed: Federation, persona: str, path: str) -> None:
    page.goto(f"{fed.broker.url}{path}")
    assert page.url.startswith(fed.idp.url), page.url
    page.locator(f'button[name="persona"][value="{persona}"]').click()
    page.wait_for_url(f"{fed.broker.url}{path}")


def checked(page: Any) -> None:
    assert axe_violations(page) == [], page.url


def test_register_test_change_and_approve_in_a_real_browser(
        federation: Federation, browser: Any) -> None:
    council = next(a for a in federation.world.authorities
                   if a.behaviour == "normal" and a.coverage != ["national"])
    kit_url = federation.app.extensions["federator"].registry.get(council.id).url
    with federation.app.extensions["federator"].engine.begin() as conn:
        conn.execute(delete(endpoints).where(endpoints.c.id == council.id))  # not yet registered

    page, problems = new_page(browser)
    sign_in_as(page, federation, f"authority-admin:{council.id}", "/registry/endpoints")
    checked(page)
    page.click("text=Register your endpoint")
    page.wait_for_url("**/registry/endpoints/new")
    checked(page)

    # FHIR reveals its credentials; leaving them out and an unsafe address are named
    page.fill("#name", council.name)
    page.fill("#code", council.code)
    page.fill("#coverage", " ".join(council.coverage))
    page.check("#protocol-2")
    assert page.locator("#client_id").is_visible()
    page.fill("#url", "http://169.254.169.254/latest/meta-data")
    page.click("#submit")
    summary = page.locator(".govuk-error-summary")
    summary.wait_for()
    assert "link-local address" in summary.inner_text()
    assert "Enter the client ID" in summary.inner_text()
    assert page.evaluate("document.activeElement.classList.contains('govuk-error-summary')")
    assert page.title().startswith("Error:")
    assert page.locator("#name").input_value() == council.name
    checked(page)
    shot(page, "registry-errors")

    page.check("#protocol")  # federator-lookup/1, the adapter kit
    page.fill("#url", kit_url)
    page.click("#submit")
    page.wait_for_url(f"**/registry/endpoints/{council.id}")
    assert "Pending" in page.locator("#status").inner_text()
    checked(page)

    page.click("text=Test this endpoint")
    page.locator("#test-result").wait_for()
    assert page.locator("#test-result").inner_text() == "Test result: passed"
    assert page.locator("td:text-is('Replayed')").count() == 1
    checked(page)
    shot(page, "registry-endpoint")
    page.context.close()

    broker, problems_b = new_page(browser)
    sign_in_as(broker, federation, "broker-admin", "/registry/endpoints")
    checked(broker)
    broker.click(f"text={council.name}")
    broker.wait_for_url(f"**/registry/endpoints/{council.id}")
    broker.click("a:has-text('Approve')")
    broker.wait_for_url(f"**/registry/endpoints/{council.id}/approve")
    assert broker.locator("td:text-is('Test lookup')").count() == 1
    checked(broker)
    shot(broker, "registry-approve")
    broker.click("#submit")
    broker.wait_for_url(f"**/registry/endpoints/{council.id}")
    assert "Active" in broker.locator("#status").inner_text()
    assert "Approved" in broker.locator(".govuk-notification-banner").inner_text()
    checked(broker)
    assert federation.app.extensions["federator"].registry.get(council.id).status == "active"

    # rejecting needs a reason, said the GOV.UK way
    other = next(a for a in federation.world.authorities if a.behaviour == "down")
    registry = federation.app.extensions["federator"].registry
    services = federation.app.extensions["federator"]
    registry.change(other.id, {"url": kit_url.replace("127.0.0.1", "localhost")},
                    {"actor_id": "t", "actor_role": "authority-admin"}, services.trail)
    broker.goto(f"{federation.broker.url}/registry/endpoints/{other.id}/reject")
    broker.click("#submit")
    broker.locator(".govuk-error-summary").wait_for()
    assert "Say why you reject" in broker.locator(".govuk-error-summary").inner_text()
    checked(broker)
    assert not [p for p in problems + problems_b
                if "Content Security Policy" in p or "Refused" in p], problems + problems_b
    broker.context.close()

