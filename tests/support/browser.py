"""The browser tests' tools: Debian's Chromium driven by Playwright (the ``browser``
fixture itself is in ``tests/e2e/conftest.py``), a page that collects console
errors, axe-core (WCAG 2.2 AA) on a page, and screenshots: taken on every run,
saved only when ``FEDERATOR_SCREENSHOTS`` names a folder (``scripts/screenshots``
saves README's into ``docs/screenshots``), so a test run changes no tracked file."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
GOVUK = ROOT / "node_modules" / "govuk-frontend" / "dist" / "govuk" / "govuk-frontend.min.css"
CHROMIUM = os.environ.get("FEDERATOR_CHROMIUM", "/usr/bin/chromium")
REQUIRED = os.environ.get("FEDERATOR_REQUIRE_SERVICES") == "1"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage"]
WCAG = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]


def missing(what: str) -> None:
    """Skip the test for want of ``what``, or fail it under FEDERATOR_REQUIRE_SERVICES=1."""
    if REQUIRED:
        pytest.fail(f"{what} is required for the browser tests (set-up: scripts/test)")
    pytest.skip(f"{what} is not installed")


def needs_node_modules() -> None:
    """axe-core and govuk-frontend come from npm (``npm ci``)."""
    if not AXE.is_file() or not GOVUK.is_file():
        missing("node_modules (npm ci)")


def new_page(browser: Any, *, javascript: bool = True) -> tuple[Any, list[str]]:
    """A page in a context of its own, with axe-core loaded, and the list its
    console errors and page errors go to."""
    context = browser.new_context(java_script_enabled=javascript,
                                  viewport={"width": 1100, "height": 900})
    context.add_init_script(path=str(AXE))  # through DevTools: not subject to the page's CSP
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    return page, problems


def _govuk_conditional_reveal(violation: dict[str, Any]) -> bool:
    """govuk-frontend's radios with conditional reveal set ``aria-expanded`` on the
    radio input (its documented pattern); axe flags that attribute on role radio.
    Only that exact finding is set aside: any other attribute or element still fails."""
    return violation["id"] == "aria-allowed-attr" and all(
        "govuk-radios__input" in node["html"]
        and "aria-expanded" in node["failureSummary"]
        and node["failureSummary"].count('="') == 1
        for node in violation["nodes"])


def axe_violations(page: Any) -> list[str]:
    result = page.evaluate("tags => axe.run(document, {runOnly: {type: 'tag', values: tags}})",
                           WCAG)
    return [f"{v['id']}: {v['help']} ({len(v['nodes'])}: "
            f"{[(n['target'], n['failureSummary']) for n in v['nodes']][:3]})"
            for v in result["violations"] if not _govuk_conditional_reveal(v)]


def screenshots_folder() -> Path | None:
    """``FEDERATOR_SCREENSHOTS`` (relative to the repository root), or None: not saved."""
    folder = os.environ.get("FEDERATOR_SCREENSHOTS", "").strip()
    return ROOT / folder if folder else None


def shot(page: Any, name: str) -> None:
    """A full-page screenshot, saved as ``<name>.png`` in the screenshots folder if any."""
    folder = screenshots_folder()
    if folder is None:
        png = page.screenshot(full_page=True)
    else:
        folder.mkdir(parents=True, exist_ok=True)
        png = page.screenshot(path=str(folder / f"{name}.png"), full_page=True)
    assert png.startswith(b"\x89PNG"), f"screenshot {name} is not a PNG"
