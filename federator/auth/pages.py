"""The plain pages of sign-in and sessions (they need no web templates)."""

from __future__ import annotations

from flask import render_template_string

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{ title }}: Federator</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body><main id="main-content">
<h1>{{ title }}</h1>
{% for line in lines %}<p>{{ line }}</p>{% endfor %}
{% if link %}<p><a href="{{ link[1] }}">{{ link[0] }}</a></p>{% endif %}
</main></body></html>
"""


def page(title: str, *lines: str, status: int = 200,
         link: tuple[str, str] | None = None) -> tuple[str, int, dict[str, str]]:
    """A plain page, never cached."""
    html = render_template_string(_PAGE, title=title, lines=lines, link=link)
    return html, status, {"Content-Type": "text/html; charset=utf-8",
                          "Cache-Control": "no-store"}


def sessions_unavailable() -> tuple[str, int, dict[str, str]]:
    return page("Sign-in is not available",
                "Federator cannot check who is signed in just now (its session store "
                "cannot be reached), so no page that needs sign-in can be shown. Nothing "
                "was sent to any authority. Try again in a few minutes.", status=503)


def roles_unconfirmed() -> tuple[str, int, dict[str, str]]:
    return page("Your roles cannot be confirmed",
                "Federator checks your roles with the identity provider every few minutes, "
                "and it cannot be reached just now, so no page that needs sign-in can be "
                "shown. Nothing was sent to any authority. Try again in a few minutes.",
                status=503)
