"""What every page blueprint shares: GOV.UK templates, navigation, error pages.

Other page blueprints (auditor, authority admin, broker admin) use
``PageBlueprint``, extend ``web/base.html`` and add their menu entries with
``add_nav_entry``; entries whose endpoint is not registered are not shown.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, Flask, current_app, g, render_template, request
from flask_wtf.csrf import generate_csrf
from jinja2 import BaseLoader, ChoiceLoader, FileSystemLoader, PackageLoader, PrefixLoader
from jinja2.runtime import StrictUndefined
from werkzeug.exceptions import HTTPException

from federator.auth.access import session_principal
from federator.web.results import long_date
from federator.web.times import uk_time


class PageUndefined(StrictUndefined):
    """Strict about names: a template using a variable nobody passed fails.

    Strict about a missing key or attribute in our own templates too (a view that
    forgot a field fails a test); lenient (falsy, empty) only inside the
    govuk-frontend-jinja components, which read their optional ``params`` that
    way, so plain ``StrictUndefined`` cannot render them.
    """

    __slots__ = ()

    def _of_object(self) -> bool:
        # ``caller`` is undefined in a macro not used with ``{% call %}``: components test it
        if self._undefined_hint == "No caller defined":
            return True
        # the GOV.UK component templates (a Nunjucks port) test names and ``params`` keys
        # they set only sometimes; strictness (names and keys) is for our own templates
        frame = sys._getframe(2)
        for _ in range(3):
            if frame is None:
                break
            if "govuk_frontend_" in frame.f_code.co_filename:
                return True
            frame = frame.f_back
        return False

    def __bool__(self) -> bool:
        if self._of_object():
            return False
        return super().__bool__()

    def __iter__(self) -> Any:
        if self._of_object():
            return iter(())
        return super().__iter__()

    def __len__(self) -> int:
        if self._of_object():
            return 0
        return super().__len__()

    def __str__(self) -> str:
        if self._of_object():
            return ""
        return super().__str__()

    def __eq__(self, other: object) -> bool:
        if self._of_object():
            return type(self) is type(other)
        return super().__eq__(other)

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)

    def __hash__(self) -> int:
        return id(type(self))

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or not self._of_object():
            return super().__getattr__(name)
        return self

    def __getitem__(self, name: Any) -> Any:
        if self._of_object():
            return self
        return super().__getitem__(name)


#: Names govuk-frontend-jinja's ``template.html`` reads; pages may override them.
TEMPLATE_DEFAULTS: dict[str, Any] = {
    name: None for name in (
        "htmlClasses", "pageTitleLang", "opengraphImageUrl", "assetUrl", "bodyClasses",
        "bodyAttributes", "headerClasses", "headerAttributes", "serviceName", "serviceUrl",
        "containerClasses", "containerAttributes", "mainClasses", "mainLang",
        "mainAttributes", "footerClasses", "footerAttributes", "cspNonce", "themeColor",
        "htmlLang",
    )
}
TEMPLATE_DEFAULTS["assetPath"] = "/assets"


class PageBlueprint(Blueprint):
    """A Flask blueprint for pages: finds the GOV.UK templates, and registers
    through flask-smorest's ``Api.register_blueprint`` without adding pages to
    the OpenAPI document."""

    description = "Web pages (not part of the API)"

    @property
    def jinja_loader(self) -> BaseLoader | None:  # type: ignore[override]
        loaders: list[BaseLoader] = [PrefixLoader({
            "govuk_frontend_jinja": PackageLoader("govuk_frontend_jinja"),
            "govuk_frontend_wtf": PackageLoader("govuk_frontend_wtf"),
        })]
        if self.template_folder and self.root_path:
            loaders.insert(0, FileSystemLoader(f"{self.root_path}/{self.template_folder}"))
        return ChoiceLoader(loaders)

    def register_views_in_doc(self, *_: Any, **__: Any) -> None:
        """Pages are not API operations."""

    def register(self, app: Any, options: dict[str, Any]) -> None:
        super().register(app, options)
        _set_up_pages(app)


@dataclass(frozen=True)
class NavEntry:
    endpoint: str
    text: str
    roles: tuple[str, ...]


NAV: list[NavEntry] = [
    NavEntry("web_lookups.new_lookup", "New lookup", ("practitioner",)),
    NavEntry("web_lookups.recent", "My recent lookups", ("practitioner",)),
]


def add_nav_entry(endpoint: str, text: str, *roles: str, before: str | None = None) -> None:
    """A menu entry shown to users with one of ``roles`` (once ``endpoint`` exists),
    last or ``before`` another endpoint's entry (the first a role has is its home)."""
    if any(e.endpoint == endpoint for e in NAV):
        return
    at = next((i for i, e in enumerate(NAV) if e.endpoint == before), len(NAV))
    NAV.insert(at, NavEntry(endpoint, text, tuple(roles)))


def nav_for(roles: Iterable[str], known: Iterable[str], entries: Sequence[NavEntry],
            current: str | None) -> list[dict[str, Any]]:
    """Menu entries for someone with ``roles``, for the endpoints that exist."""
    have, exists = set(roles), set(known)
    return [{"endpoint": e.endpoint, "text": e.text, "active": e.endpoint == current}
            for e in entries if e.endpoint in exists and have & set(e.roles)]


def render_page(template: str, status: int = 200, *, no_store: bool = False,
                **context: Any) -> Any:
    principal = g.get("principal") or session_principal()
    known = {rule.endpoint for rule in current_app.url_map.iter_rules()}
    nav = nav_for(principal.roles if principal else (), known, NAV, request.endpoint)
    for item in nav:
        item["href"] = _url(item["endpoint"])
    settings = current_app.extensions["federator"].settings
    body = render_template(template, **{
        **TEMPLATE_DEFAULTS, "principal": principal, "nav": nav,
        "sign_out_url": _url("signin.sign_out") if principal else None,
        "csrf_token": generate_csrf, "service_name": settings.service_name,
        "service_owner": settings.service_owner,
        "govuk_brand": settings.service_brand == "govuk", "cspNonce": _nonce(),
        **context,
    })
    headers = {"Cache-Control": "no-store"} if no_store else {}
    return body, status, headers


def _nonce() -> str | None:
    """The response's CSP nonce, for govuk-frontend's one inline script."""
    make = current_app.jinja_env.globals.get("csp_nonce")
    return make() if callable(make) else None


def _url(endpoint: str) -> str | None:
    from flask import url_for
    from werkzeug.routing import BuildError
    try:
        return url_for(endpoint)
    except BuildError:
        return None


# --------------------------------------------------------------------------
# App-wide set-up: strict names, HTML error pages for browsers
# --------------------------------------------------------------------------

ERROR_PAGES = {
    400: ("Sorry, there is a problem with the request",
          "The page could not use what was sent. Go back and try again."),
    403: ("You cannot see this page",
          "Your account does not have the role this page needs. "
          "If you think it should, ask your organisation's administrator."),
    404: ("Page not found",
          "If you typed the web address, check it is correct. "
          "If you pasted the web address, check you copied the entire address."),
    405: ("Page not found", "This page cannot be used in that way."),
    429: ("Too many requests",
          "You have made a lot of requests in a short time. Wait a minute, then try again."),
    500: ("Sorry, there is a problem with the service",
          "Try again later. Nothing was sent to any authority that was not recorded."),
    503: ("Sorry, the service is unavailable",
          "Try again later. Nothing was sent to any authority."),
}


def wants_html() -> bool:
    """A browser asking for a page (the API keeps its JSON errors)."""
    if request.path.startswith(("/api/", "/.well-known/")):
        return False
    best = request.accept_mimetypes.best_match(["application/json", "text/html"])
    return best == "text/html"


def error_page(error: HTTPException) -> Any:
    if not wants_html():
        return current_app.extensions["flask-smorest"]["apis"][""]["ext_obj"] \
            .handle_http_exception(error)
    code = error.code or 500
    title, text = ERROR_PAGES.get(code, ERROR_PAGES[500])
    body, status, headers = render_page("web/error.html", code, title=title, text=text,
                                        code=code)
    response = current_app.make_response((body, status, headers))
    if code == 405 and error.get_response().headers.get("Allow"):
        response.headers["Allow"] = error.get_response().headers["Allow"]
    return response


def _set_up_pages(app: Flask) -> None:
    if app.extensions.get("federator_pages"):
        return
    app.extensions["federator_pages"] = True
    app.jinja_env.undefined = PageUndefined
    # govuk-frontend-jinja (a Nunjucks port) uses ``undefined`` as a value
    app.jinja_env.globals["undefined"] = PageUndefined(obj=None, name="undefined")
    app.jinja_env.globals.setdefault("null", None)
    app.jinja_env.filters["uk_time"] = uk_time
    app.jinja_env.filters["long_date"] = long_date
    for code in ERROR_PAGES:
        app.register_error_handler(code, error_page)
