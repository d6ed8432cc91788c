"""Pure rules of sessions and tokens: what counts as an access token, the
authentication level, when roles are re-read, what a session keeps of the
provider's tokens; and the server-side store on the in-process state (the id
changes at sign-in, an ended session's id opens nothing, nothing is stored for a
visitor who stores nothing)."""

from __future__ import annotations

import pytest
from flask import Flask, session

from federator.auth.refresh import due, tokens_from
from federator.auth.session_store import (
    ServerSession,
    ServerSessionInterface,
    new_id,
    record_key,
    well_formed,
)
from federator.auth.tokens import access_token_problem, acr_problem
from federator.state import SharedState

AT = {"typ": "at+jwt", "alg": "ES256"}
JWT = {"typ": "JWT", "alg": "ES256"}
CLAIMS = {"sub": "u1", "client_id": "case-system"}


@pytest.mark.parametrize("typ", ["at+jwt", "AT+JWT", "application/at+jwt"])
def test_a_typed_access_token_is_accepted(typ: str) -> None:
    assert access_token_problem({"typ": typ}, CLAIMS) is None


@pytest.mark.parametrize("header", [JWT, {"alg": "ES256"}, {"typ": "id_token+jwt"}])
def test_without_the_access_token_type_a_jwt_is_refused(header: dict) -> None:
    assert "not an access token" in (access_token_problem(header, CLAIMS) or "")


@pytest.mark.parametrize("extra", [{"nonce": "n"}, {"at_hash": "h"}, {"c_hash": "h"},
                                   {"typ": "ID"}])
def test_an_id_token_is_refused_whatever_its_header_or_client(extra: dict) -> None:
    for header, clients in ((AT, ()), (JWT, ("case-system",)), (AT, ("case-system",))):
        problem = access_token_problem(header, {**CLAIMS, **extra}, clients)
        assert problem == "an ID token is not an access token"


def test_an_allow_list_admits_only_its_clients_and_untyped_tokens_of_them() -> None:
    allowed = ("case-system",)
    assert access_token_problem(JWT, CLAIMS, allowed) is None
    assert access_token_problem(JWT, {"sub": "u1", "azp": "case-system"}, allowed) is None
    for claims in ({"sub": "u1", "client_id": "other"}, {"sub": "u1"},
                   {"sub": "u1", "client_id": ["case-system"]}):
        assert access_token_problem(AT, claims, allowed) == (
            "issued to a client this API does not accept")


def test_the_required_acr() -> None:
    assert acr_problem({}, ()) is None
    assert acr_problem({"acr": "low"}, ()) is None
    assert acr_problem({"acr": "aal3"}, ("aal2", "aal3")) is None
    assert "no authentication level" in (acr_problem({}, ("aal3",)) or "")
    assert "no authentication level" in (acr_problem({"acr": ["aal3"]}, ("aal3",)) or "")
    assert "not one this service accepts" in (acr_problem({"acr": "aal1"}, ("aal3",)) or "")


def test_roles_are_due_to_be_read_again_after_the_interval() -> None:
    assert not due(1000.0, 900.0, 0.0, 300)
    assert due(1200.0, 900.0, 0.0, 300)
    assert not due(1000.0, None, 900.0, 300)  # from sign-in when never re-read
    assert due(1200.0, None, 900.0, 300)
    assert due(1000.0, None, None, 300) and due(1000.0, "x", True, 300)
    assert due(1000.0, 5000.0, 0.0, 300)  # a time in the future is not trusted


def test_what_a_session_keeps_of_the_providers_tokens() -> None:
    first = tokens_from({"access_token": "a1", "refresh_token": "r1", "id_token": "i1",
                         "expires_in": 60, "token_type": "Bearer"}, now=100.0)
    assert first == {"access_token": "a1", "refresh_token": "r1", "id_token": "i1",
                     "expires_at": 160.0}
    again = tokens_from({"access_token": "a2", "expires_in": True}, first, now=200.0)
    assert again == {"access_token": "a2", "refresh_token": "r1", "id_token": "i1"}


def test_session_ids_are_random_and_stored_under_a_hash() -> None:
    ids = {new_id() for _ in range(100)}
    assert len(ids) == 100 and all(well_formed(i) for i in ids)
    assert not any(well_formed(v) for v in (None, "", "x" * 42, "x" * 44, "a.b" * 15))
    some = ids.pop()
    assert some not in record_key(some) and record_key(some).startswith("session:")


def _app() -> tuple[Flask, SharedState]:
    app = Flask(__name__)
    state = SharedState(None)
    app.session_interface = ServerSessionInterface(state, ttl_s=60)

    @app.get("/visit")
    def visit() -> str:
        return "ok"

    @app.get("/in")
    def sign_in() -> str:
        assert isinstance(session, ServerSession)
        session.regenerate()
        session["principal"] = "sam"
        return "in"

    @app.get("/who")
    def who() -> str:
        return str(session.get("principal"))

    @app.get("/out")
    def sign_out() -> str:
        assert isinstance(session, ServerSession)
        app.session_interface.end(session)  # type: ignore[attr-defined]
        session["after"] = "stored after sign-out"
        return "out"

    return app, state


def test_the_store_changes_the_id_at_sign_in_and_forgets_it_at_sign_out() -> None:
    app, state = _app()
    client = app.test_client()
    assert "Set-Cookie" not in client.get("/visit").headers  # nothing stored, no cookie
    with client.session_transaction() as s:
        s["next"] = "/lookups/new"  # a visitor's pre-sign-in session
    before = client.get_cookie("session").value  # type: ignore[union-attr]
    client.get("/in")
    after = client.get_cookie("session").value  # type: ignore[union-attr]
    assert after != before and well_formed(after)
    assert state.get_many([record_key(before)]) == [None]  # the old id opens nothing
    assert client.get("/who").get_data(as_text=True) == "sam"
    client.get("/out")
    assert state.get_many([record_key(after)]) == [None]
    replay = app.test_client()
    replay.set_cookie("session", after)
    assert replay.get("/who").get_data(as_text=True) == "None"
