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


def sessions_unavailable(*, form_sent: bool = False) -> tuple[str, int, dict[str, str]]:
    """Who is signed in cannot be checked (the session store is down): nothing is
    shown, and a form's answers cannot be given back (they would be shown to
    whoever sent them, unchecked); the browser's Back button still has them."""
    lines = ["Federator cannot check who is signed in just now (its session store "
             "cannot be reached), so no page that needs sign-in can be shown. Nothing "
             "was sent to any authority. Try again in a few minutes."]
    if form_sent:
        lines.append("What you typed was not kept here: go back in your browser to find "
                     "it in the form, and send it again once this is fixed.")
    return page("Sign-in is not available", *lines, status=503)


def roles_unconfirmed() -> tuple[str, int, dict[str, str]]:
    return page("Your roles cannot be confirmed",
                "Federator checks your roles with the identity provider every few minutes, "
                "and it cannot be reached just now, so no page that needs sign-in can be "
                "shown. Nothing was sent to any authority. Try again in a few minutes.",
                status=503)
