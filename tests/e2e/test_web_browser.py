"""The practitioner's pages in a real browser (Debian's Chromium, driven by
Playwright): sign in through the demo identity provider, a form with errors,
a lookup with its progress and its incomplete-answer banner, the recent
lookups; axe-core (WCAG 2.2 AA) on every page; screenshots for README
(saved by ``scripts/screenshots`` only)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import pytest
from support.browser import axe_violations, needs_node_modules, new_page, shot

from federator.config import Settings
from federator.demo.federation import Federation, start_federation
from federator.demo.world import Child

pytestmark = pytest.mark.integration

PURPOSE = "Assessment under section 17: finding services already involved"


@pytest.fixture(scope="module")
def federation(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Federation]:
    needs_node_modules()
    fed = start_federation(tmp_path_factory.mktemp("web") / "demo",
                           base=Settings(deadline_default_ms=4000))
    yield fed
    fed.stop()


def sign_in(page: Any, fed: Federation, persona: str = "practitioner") -> None:
    page.goto(f"{fed.broker.url}/lookups/new")
    assert page.url.startswith(fed.idp.url), page.url  # sent to the identity provider
    page.locator(f'button[name="persona"][value="{persona}"]').click()
    page.wait_for_url(f"{fed.broker.url}/lookups/new")


def child_with_down_authority(fed: Federation) -> tuple[Child, list[str], str]:
    down = next(a for a in fed.world.authorities if a.behaviour == "down")
    for child in fed.world.children:
        live = [a for a in child.known_to if fed.world.authority(a).behaviour == "normal"]
        if live and not child.shielded and child.postcodes:
            return child, list(down.coverage), down.name
    raise AssertionError("no suitable child in the demo world")


STRAY_MARKUP = re.compile(r"</?[a-z][a-z0-9]*[\s>/]|&(lt|gt|amp|quot|#\d+);")


def assert_no_stray_markup(page: Any) -> None:
    """What a person reads holds no tags or entities: every value was escaped
    exactly once (a notice naming an authority was escaped twice and showed
    ``<strong>…</strong>`` as text)."""
    text = page.locator("main").inner_text()
    assert not STRAY_MARKUP.search(text), STRAY_MARKUP.search(text)


def fill_lookup(page: Any, child: Child, areas: list[str]) -> None:
    page.fill("#nhs_number", child.nhs_number)
    page.fill("#postcode", child.postcodes[0])
    codes = " ".join(a for a in areas if a != "national")
    if codes:
        if not page.locator("#areas").is_visible():
            page.click("summary:has-text('Add areas by code')")
        page.fill("#areas", codes)
    page.fill("#purpose", PURPOSE)
    page.check("#basis_type")  # consent, the first choice
    page.check("#given_by-2")  # a parent
    given = date.today() - timedelta(days=3)
    page.fill("#given_on-day", str(given.day))
    page.fill("#given_on-month", str(given.month))
    page.fill("#given_on-year", str(given.year))
    page.fill("#consent_reference", "CASE-123")


def test_practitioner_journey_in_a_real_browser(federation: Federation, browser: Any) -> None:
    page, problems = new_page(browser)
    sign_in(page, federation)
    assert page.locator("h1").inner_text() == "Find who is working with a child"
    assert axe_violations(page) == []
    shot(page, "lookup-form")

    # errors: a bad NHS number and a consent basis without its details
    page.fill("#nhs_number", "943 476 5918")
    page.fill("#purpose", PURPOSE)
    page.check("#basis_type")
    page.click("#submit")
    summary = page.locator(".govuk-error-summary")
    summary.wait_for()
    text = summary.inner_text()
    assert "check digit" in text
    assert "Select who gave consent" in text  # each field says what to do, in its words
    messages = summary.locator("li").all_inner_texts()
    assert len(messages) == len(set(messages)), messages  # no message said twice
    assert page.locator("#nhs_number").input_value() == "943 476 5918"  # kept as typed
    assert page.locator("#purpose").input_value() == PURPOSE
    assert page.evaluate("document.activeElement.classList.contains('govuk-error-summary')")
    assert page.title().startswith("Error:")
    assert axe_violations(page) == []
    shot(page, "lookup-errors")

    # a lookup that reaches a down authority: progress, then the banner
    child, areas, down_name = child_with_down_authority(federation)
    page.fill("#nhs_number", "")
    fill_lookup(page, child, areas)
    page.click("#submit")
    count = page.locator("#lookup-progress-count")
    count.wait_for()
    page.wait_for_function(
        "() => / of \\d+ authorities have answered/.test("
        "document.getElementById('lookup-progress-count')?.textContent || '')", timeout=15000)
    total = int(re.search(r" of (\d+) authorities", count.inner_text()).group(1))
    assert axe_violations(page) == []
    shot(page, "lookup-progress")
    page.locator("#results-heading").wait_for(timeout=20000)
    banner = page.locator("#incomplete-answer")
    assert banner.is_visible()
    assert down_name in banner.inner_text()
    down = next(a for a in federation.world.authorities if a.name == down_name)
    assert down.contact and down.contact in banner.inner_text()  # who to call instead
    asked = page.locator(".app-asked").inner_text()
    assert re.search(r"Asked by\s+\S.+", asked)
    assert re.search(r"Answer received\s+\d{1,2} \w{3} \d{4}, \d\d:\d\d:\d\d (GMT|BST)", asked)
    expected = {i.professional_name for i in federation.world.involvements_for(child.child_ref)
                if federation.world.authority(i.authority_id).behaviour == "normal"
                and not i.sensitive}
    shown = set(page.locator(".govuk-summary-card__title").all_inner_texts())
    assert expected and expected <= shown
    asked = page.locator("caption:has-text('Each authority asked') >> xpath=.. >> tbody tr")
    assert asked.count() == total  # the progress counted exactly the authorities reported
    assert_no_stray_markup(page)
    assert axe_violations(page) == []
    shot(page, "lookup-results")

    # my recent lookups: the one just made, with its outcome counts
    page.click("text=My recent lookups")
    page.wait_for_url("**/lookups/recent")
    row = page.locator("tbody tr").first
    assert PURPOSE in row.inner_text()
    assert "could not be reached" in row.inner_text()
    assert "Reference: CASE-123" in row.inner_text()  # what tells two rows apart
    assert "Knew the child: " in row.inner_text()
    assert re.search(r"\d\d:\d\d (GMT|BST)", row.inner_text())
    assert child.nhs_number not in page.content()
    assert axe_violations(page) == []
    shot(page, "recent-lookups")

    # its receipt for the case file: outcomes, no child details, no professionals
    row.locator("text=Receipt").click()
    page.wait_for_url("**/receipt")
    assert down_name in page.content()
    assert child.nhs_number not in page.content()
    assert not any(name in page.content() for name in expected)
    assert_no_stray_markup(page)
    assert axe_violations(page) == []
    shot(page, "lookup-receipt")

    assert not [p for p in problems if "Content Security Policy" in p or "Refused" in p], problems
    page.context.close()


def test_without_javascript_the_post_returns_the_whole_results_page(
        federation: Federation, browser: Any) -> None:
    page, _ = new_page(browser, javascript=False)
    sign_in(page, federation)
    child, areas, down_name = child_with_down_authority(federation)
    fill_lookup(page, child, areas)
    with page.expect_navigation():
        page.click("#submit")
    assert page.locator("#results-heading").is_visible()
    assert down_name in page.locator("#incomplete-answer").inner_text()
    assert_no_stray_markup(page)
    first = set(page.locator(".govuk-summary-card__title").all_inner_texts())
    assert first

    # "ask again": the down authority is asked again (and is still down); the
    # people found the first time stay on the page, marked with their lookup
    with page.expect_navigation():
        page.click("#ask-again button")
    assert page.locator("#results-heading").is_visible()
    assert "puts together lookup" in page.locator("main").inner_text()
    assert set(page.locator(".govuk-summary-card__title").all_inner_texts()) == first
    assert page.locator(".govuk-summary-card", has_text="Found by").count() == len(first)
    assert down_name in page.locator("#incomplete-answer").inner_text()
    assert_no_stray_markup(page)

    # a changed first answer is not believed: the page says it holds only the retry's
    page.evaluate("document.querySelector('input[name=first_answer]').value += 'x'")
    with page.expect_navigation():
        page.click("#ask-again button")
    assert "could not be added" in page.locator("main").inner_text()
    assert page.locator(".govuk-summary-card__title").count() == 0
    page.context.close()


def test_a_shielded_childs_notice_names_the_authority_in_words(
        federation: Federation, browser: Any) -> None:
    child = next(c for c in federation.world.children if c.shielded and c.postcodes)
    home = federation.world.authority(child.known_to[0])
    page, _ = new_page(browser, javascript=False)
    sign_in(page, federation)
    fill_lookup(page, child, list(home.coverage))
    with page.expect_navigation():
        page.click("#submit")
    assert page.locator("#results-heading").is_visible()
    inset = page.locator(".govuk-inset-text", has_text=home.name)
    assert inset.count() == 1
    assert_no_stray_markup(page)
    assert inset.locator("strong").all_inner_texts() == [f"{home.name}:"]  # a tag, not text
    page.context.close()


def test_error_pages_are_pages(federation: Federation, browser: Any) -> None:
    page, _ = new_page(browser)
    sign_in(page, federation)
    response = page.goto(f"{federation.broker.url}/no-such-page")
    assert response.status == 404
    assert page.locator("h1").inner_text() == "Page not found"
    assert axe_violations(page) == []
    page.context.close()


FOCUS_WALK = """() => {
  const el = document.activeElement;
  if (!el || el === document.body) return null;
  const style = getComputedStyle(el);
  const visible = (style.boxShadow && style.boxShadow !== 'none')
    || (style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) > 0
        && !/rgba\\(0, 0, 0, 0\\)|transparent/.test(style.outlineColor));
  const all = Array.from(document.querySelectorAll('*'));
  return {id: el.id || el.name || el.tagName, index: all.indexOf(el),
          inMain: !!el.closest('main'), visible};
}"""


def tab_through(page: Any, limit: int = 120) -> list[dict[str, Any]]:
    """Press Tab until focus leaves the page's main content after entering it:
    what got focus, in order."""
    seen: list[dict[str, Any]] = []
    for _ in range(limit):
        page.keyboard.press("Tab")
        now = page.evaluate(FOCUS_WALK)
        if now is None or (seen and seen[-1]["inMain"] and not now["inMain"]):
            break
        seen.append(now)
    return seen


def test_the_lookup_journey_by_keyboard_alone(federation: Federation, browser: Any) -> None:
    page, _ = new_page(browser)
    sign_in(page, federation)
    page.goto(f"{federation.broker.url}/lookups/new")
    walked = tab_through(page)
    in_main = [w for w in walked if w["inMain"]]
    assert [w["index"] for w in in_main] == sorted(w["index"] for w in in_main)  # in order
    assert not [w["id"] for w in walked if not w["visible"]]  # focus always visible
    reached = {w["id"] for w in in_main}
    for control in ("nhs_number", "given_name", "family_name", "date_of_birth-day",
                    "date_of_birth-month", "date_of_birth-year", "postcode", "also_ask", "SUMMARY",
                    "purpose", "basis_type", "submit"):
        assert control in reached, (control, [w["id"] for w in in_main])

    # filled, then sent with Enter from the keyboard
    child, areas, _ = child_with_down_authority(federation)
    fill_lookup(page, child, areas)
    page.focus("#submit")
    page.keyboard.press("Enter")
    page.locator("#results-heading").wait_for(timeout=20000)
    walked = tab_through(page)
    assert not [w["id"] for w in walked if not w["visible"]]
    in_main = [w for w in walked if w["inMain"]]
    assert in_main and [w["index"] for w in in_main] == sorted(w["index"] for w in in_main)
    page.context.close()


@pytest.mark.parametrize("javascript", [True, False])
def test_form_and_results_reflow_at_320_pixels(federation: Federation, browser: Any,
                                               javascript: bool) -> None:
    """WCAG 1.4.10: nothing needs scrolling sideways at 320 CSS pixels wide."""
    page, _ = new_page(browser, javascript=javascript)
    page.set_viewport_size({"width": 320, "height": 800})
    sign_in(page, federation)
    wide = "() => document.documentElement.scrollWidth"
    assert page.evaluate(wide) <= 320
    child, areas, _ = child_with_down_authority(federation)
    fill_lookup(page, child, areas)
    if javascript:
        page.click("#submit")
        page.locator("#results-heading").wait_for(timeout=20000)
    else:
        with page.expect_navigation():
            page.click("#submit")
    assert page.locator(".govuk-summary-card").count() > 0
    assert page.evaluate(wide) <= 320, page.evaluate(
        "() => Array.from(document.querySelectorAll('main *')).filter(e => "
        "e.getBoundingClientRect().right > 321).slice(0, 5).map(e => e.outerHTML.slice(0, 120))")
    page.context.close()


def test_another_authority_is_chosen_by_name(federation: Federation, browser: Any) -> None:
    """Not GSS codes: an accessible autocomplete over the registry's authorities,
    a plain select without JavaScript; either way the chosen authority is asked."""
    child, _, _ = child_with_down_authority(federation)
    home = federation.world.authority(child.home_authority)
    other = next(a for a in federation.world.authorities
                 if a.behaviour == "normal" and a.id != home.id and "national" not in a.coverage)
    for javascript in (True, False):
        page, problems = new_page(browser, javascript=javascript)
        sign_in(page, federation)
        fill_lookup(page, child, [])
        if javascript:
            page.fill("#also_ask", other.name[:6])
            option = page.locator(".autocomplete__option", has_text=other.name).first
            option.wait_for()
            option.click()
            assert axe_violations(page) == []
        else:
            page.select_option("#also_ask", label=other.name)
        if javascript:
            page.click("#submit")
            page.locator("#results-heading").wait_for(timeout=20000)
        else:
            with page.expect_navigation():
                page.click("#submit")
        asked = page.locator("caption:has-text('Each authority asked') >> xpath=.. >> tbody")
        assert other.name in asked.inner_text(), javascript
        assert not problems, problems
        page.context.close()
