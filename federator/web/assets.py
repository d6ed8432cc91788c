"""Static files for the pages: govuk-frontend from ``node_modules`` (installed
by ``npm ci``, never copied into the repository) and our own ``static/``."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from flask import abort, current_app, send_from_directory

from federator.auth.access import public
from federator.web.blueprint import PageBlueprint

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent.parent
DEFAULT_GOVUK = ROOT / "node_modules" / "govuk-frontend" / "dist" / "govuk"
#: alphagov's accessible-autocomplete (npm): the "another authority" select
AUTOCOMPLETE = ROOT / "node_modules" / "accessible-autocomplete" / "dist"
AUTOCOMPLETE_FILES = ("accessible-autocomplete.min.js", "accessible-autocomplete.min.css")
OWN = Path(__file__).resolve().parent / "static"
GOVUK_BUNDLES = ("govuk-frontend.min.css", "govuk-frontend.min.js",
                 "govuk-frontend.min.css.map", "govuk-frontend.min.js.map")
MAX_AGE_S = 3600

blp = public(PageBlueprint("web_assets", __name__, url_prefix="/assets"))


def govuk_dir() -> Path:
    configured = current_app.extensions["federator"].settings.govuk_frontend_dir
    return Path(configured) if configured else DEFAULT_GOVUK


@blp.record_once
def _check_installed(state: Any) -> None:
    settings = state.app.extensions["federator"].settings
    folder = Path(settings.govuk_frontend_dir) if settings.govuk_frontend_dir else DEFAULT_GOVUK
    if not (folder / "govuk-frontend.min.css").is_file():
        log.warning("govuk-frontend is not installed at %s: run `npm ci` in %s; pages will "
                    "show without styles", folder, ROOT)


@blp.route("/<path:filename>")
def asset(filename: str) -> Any:
    if filename.startswith("federator/"):
        return send_from_directory(OWN, filename.removeprefix("federator/"), max_age=MAX_AGE_S)
    if filename.startswith("accessible-autocomplete/"):
        name = filename.removeprefix("accessible-autocomplete/")
        if name in AUTOCOMPLETE_FILES:
            return send_from_directory(AUTOCOMPLETE, name, max_age=MAX_AGE_S)
        abort(404)
    folder = govuk_dir()
    if filename in GOVUK_BUNDLES:
        return send_from_directory(folder, filename, max_age=MAX_AGE_S)
    if filename.startswith(("fonts/", "images/")) or filename == "manifest.json":
        return send_from_directory(folder / "assets", filename, max_age=MAX_AGE_S)
    abort(404)
