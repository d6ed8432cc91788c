"""Run by councils and NHS bodies, not on GOV.UK: no crown and no Crown
copyright unless configured; the service's name and owner are settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from federator import create_app
from federator.config import Settings

pytestmark = pytest.mark.integration

CROWN = ("govuk-header__logotype", "govuk-footer__crown", "Crown copyright",
         "Open Government Licence")


def page(tmp_path: Path, database_url: str, **settings: str) -> str:
    app = create_app(Settings(env="development", instance_dir=tmp_path,
                              database_url=database_url, **settings).checked(), migrate=True)
    try:
        response = app.test_client().get("/no-such-page", headers={"Accept": "text/html"})
        assert response.status_code == 404
        return response.get_data(as_text=True)
    finally:
        app.extensions["federator"].engine.dispose()


def test_by_default_no_crown_and_the_owner_named(tmp_path: Path, database_url: str) -> None:
    html = page(tmp_path, database_url, service_name="Who works with this child",
                service_owner="West Yorkshire councils and NHS trusts")
    assert not [mark for mark in CROWN if mark in html]
    assert "Who works with this child" in html
    assert "<title>Page not found – Who works with this child</title>" in html
    assert "Who works with this child is run by West Yorkshire councils and NHS trusts" in html
    assert "It is not a GOV.UK service." in html


def test_the_govuk_brand_only_when_configured(tmp_path: Path, database_url: str) -> None:
    html = page(tmp_path, database_url, service_brand="govuk")
    assert "govuk-header__logotype" in html and "Crown copyright" in html
