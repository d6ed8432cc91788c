"""The registry pages only a broker admin uses: approve an endpoint (its last
test result shown) or reject it with a reason. See ``registry_pages``."""

from __future__ import annotations

from typing import Any

from federator.auth.access import require_page_roles
from federator.web.blueprint import PageBlueprint
from federator.web.registry_pages import review_page

blp = require_page_roles(
    PageBlueprint("web_registry_approval", __name__, template_folder="templates"),
    "broker-admin")


@blp.route("/registry/endpoints/<endpoint_id>/<any(approve, reject):action>",
           methods=["GET", "POST"])
def review(endpoint_id: str, action: str) -> Any:
    return review_page(endpoint_id, action)
