"""``/``: sends each visitor to where they start (or to sign in)."""

from __future__ import annotations

from typing import Any

from flask import current_app, redirect, url_for
from werkzeug.routing import BuildError

from federator.auth.access import public, session_principal
from federator.web.blueprint import NAV, PageBlueprint, render_page

blp = public(PageBlueprint("web_home", __name__))


@blp.route("/")
def home() -> Any:
    principal = session_principal()
    if principal is None:
        try:
            return redirect(url_for("signin.sign_in", next="/"))
        except BuildError:
            return render_page("web/error.html", 503, title="Sign-in is not set up",
                               text="This service has no sign-in configured.", code=503)
    known = {rule.endpoint for rule in current_app.url_map.iter_rules()}
    for entry in NAV:
        if entry.endpoint in known and set(entry.roles) & set(principal.roles):
            return redirect(url_for(entry.endpoint))
    return render_page("web/error.html", 403, title="You cannot use this service yet",
                       text="Your account has no role here. Ask your organisation's "
                            "administrator.", code=403)
