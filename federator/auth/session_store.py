"""Server-side sessions: the cookie holds only a random id; what the session
holds (who is signed in, the provider's tokens, sign-in state, the CSRF secret)
is kept in the broker's shared state (``federator.state``: Redis when
``FEDERATOR_REDIS_URL`` is set, else in-process), under the SHA-256 of the id,
with a time to live of the idle time-out.

So a session ends everywhere when its record is deleted (sign-out, idle or
lifetime time-out, roles withdrawn): a cookie copied before then opens nothing
afterwards. A forged or unknown id opens an empty session. The id changes at
sign-in (no session fixation).

When the shared state cannot be read the session is marked ``unavailable``:
``federator.auth.sessions`` answers pages that need a session with a 503
rather than treat the user as signed out or carry on without the record.
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
from typing import Any

from flask import Flask, Request, Response
from flask.json.tag import TaggedJSONSerializer
from flask.sessions import SessionInterface, SessionMixin
from werkzeug.datastructures import CallbackDict

from federator.state import SharedState, StateUnavailable

log = logging.getLogger(__name__)

#: ``secrets.token_urlsafe(32)``: 43 characters of the URL-safe alphabet.
_ID = re.compile(r"[A-Za-z0-9_-]{43}")


def new_id() -> str:
    return secrets.token_urlsafe(32)


def well_formed(session_id: str | None) -> bool:
    return bool(session_id) and _ID.fullmatch(session_id or "") is not None


def record_key(session_id: str) -> str:
    """The shared-state key of a session: a hash, so the store's keys are not cookies."""
    return "session:" + hashlib.sha256(session_id.encode()).hexdigest()


#: Beside a session's record: the provider's tokens once roles have been re-read
#: (kept apart, so a request writing the record cannot put back a spent refresh
#: token), and the right to re-read them.
TOKENS, REFRESHING = ":tokens", ":refreshing"


def all_keys(session_id: str) -> tuple[str, ...]:
    key = record_key(session_id)
    return key, key + TOKENS, key + REFRESHING


class ServerSession(CallbackDict, SessionMixin):  # type: ignore[misc]
    """A session whose contents live in the shared state under ``sid``."""

    def __init__(self, initial: dict[str, Any] | None = None, sid: str | None = None, *,
                 unavailable: bool = False) -> None:
        def on_update(_: Any) -> None:
            self.modified = True
            self.persisted = False

        super().__init__(initial or {}, on_update)
        self.sid = sid
        self.new = sid is None
        self.modified = False
        self.accessed = True
        #: The shared state could not be read: nothing is known about this browser.
        self.unavailable = unavailable
        #: Give the session a new id when it is next saved (at sign-in).
        self.rotate = False
        #: Its record was written (or deleted) after the last change.
        self.persisted = False

    def regenerate(self) -> None:
        self.rotate, self.modified, self.persisted = True, True, False


class ServerSessionInterface(SessionInterface):
    serializer = TaggedJSONSerializer()

    def __init__(self, state: SharedState, ttl_s: int, tokens_ttl_s: int | None = None) -> None:
        self.state = state
        self.ttl_s = ttl_s
        self.tokens_ttl_s = tokens_ttl_s or ttl_s

    def tokens(self, session: SessionMixin) -> dict[str, Any]:
        """The provider's tokens for this session: as last renewed, else as at sign-in."""
        sid = getattr(session, "sid", None)
        if sid is not None:
            [raw] = self.state.get_many([record_key(sid) + TOKENS])
            if raw is not None:
                renewed = self.serializer.loads(raw)
                if isinstance(renewed, dict):
                    return renewed
        held = session.get("tokens")
        return dict(held) if isinstance(held, dict) else {}

    def put_tokens(self, session: SessionMixin, tokens: dict[str, Any]) -> None:
        sid = getattr(session, "sid", None)
        if sid is None:
            session["tokens"] = tokens
            return
        self.state.put(record_key(sid) + TOKENS, self.serializer.dumps(tokens),
                       self.tokens_ttl_s)

    def open_session(self, app: Flask, request: Request) -> ServerSession:
        sid = request.cookies.get(self.get_cookie_name(app))
        if not well_formed(sid):
            return ServerSession()
        assert sid is not None
        try:
            [raw] = self.state.get_many([record_key(sid)])
        except StateUnavailable:
            log.warning("sessions cannot be read: shared state unavailable")
            return ServerSession(unavailable=True)
        if raw is None:  # ended, timed out, or never issued
            return ServerSession()
        try:
            data = self.serializer.loads(raw)
        except (ValueError, TypeError):
            return ServerSession()
        return ServerSession(data if isinstance(data, dict) else {}, sid)

    def end(self, session: ServerSession) -> None:
        """Delete the session's record now; ``StateUnavailable`` when it cannot be."""
        session.clear()
        session.persisted = False
        self.persist(session)
        session.sid = None  # anything stored afterwards goes under a new id

    def persist(self, session: ServerSession) -> None:
        """Write (or delete) the record of a changed session now; ``StateUnavailable``
        when that cannot be done (``federator.auth.sessions`` then answers 503)."""
        if session.unavailable or not session.modified or session.persisted:
            return
        if not session:
            if session.sid is not None:
                self.state.delete(*all_keys(session.sid))
            session.persisted = True
            return
        old = session.sid
        sid = new_id() if old is None or session.rotate else old
        self.state.put(record_key(sid), self.serializer.dumps(dict(session)), self.ttl_s)
        if old is not None and old != sid:
            self.state.delete(*all_keys(old))
        session.sid, session.rotate, session.persisted = sid, False, True

    def save_session(self, app: Flask, session: SessionMixin, response: Response) -> None:
        if not isinstance(session, ServerSession) or session.unavailable or not session.modified:
            return
        try:
            self.persist(session)
        except StateUnavailable:
            log.warning("a session could not be saved: shared state unavailable")
            return
        name = self.get_cookie_name(app)
        options: dict[str, Any] = {
            "domain": self.get_cookie_domain(app), "path": self.get_cookie_path(app),
            "secure": self.get_cookie_secure(app), "httponly": self.get_cookie_httponly(app),
            "samesite": self.get_cookie_samesite(app)}
        response.vary.add("Cookie")
        if not session:
            response.delete_cookie(name, **options)
            return
        response.set_cookie(name, session.sid or "",
                            expires=self.get_expiration_time(app, session), **options)
