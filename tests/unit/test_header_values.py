"""A request id (echoed in ``X-Request-Id`` and sent on to the adapters) never
carries a line break: a trailing newline passes a ``$`` regular expression."""

from __future__ import annotations

import pytest
from flask import Flask

from adapters.kit import app as kit_app
from federator.logs import install_request_ids


@pytest.fixture
def app() -> Flask:
    flask_app = Flask(__name__)
    install_request_ids(flask_app)
    flask_app.add_url_rule("/", "index", lambda: "ok")
    return flask_app


@pytest.mark.parametrize("given", ["abcdefgh\n", "abcdefgh\r\nSet-Cookie: x=1",
                                   "abcdefgh\u2028", "abcdefgh\u0000"])
def test_a_request_id_with_a_line_break_is_replaced(app: Flask, given: str) -> None:
    # the environ directly: werkzeug's test client would refuse the header itself
    response = app.test_client().get("/", environ_base={"HTTP_X_REQUEST_ID": given})
    assert response.status_code == 200
    echoed = response.headers["X-Request-Id"]
    assert echoed != given and len(echoed) == 32 and echoed.isalnum()


def test_a_well_formed_request_id_is_kept(app: Flask) -> None:
    response = app.test_client().get("/", headers={"X-Request-Id": "req-2026.11_26"})
    assert response.headers["X-Request-Id"] == "req-2026.11_26"


def test_the_kit_takes_no_request_id_with_a_final_newline() -> None:
    assert kit_app._REQUEST_ID.match("abcdefgh") is not None
    assert kit_app._REQUEST_ID.match("abcdefgh\n") is None
