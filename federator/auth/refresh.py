"""Re-reading a signed-in user's claims from the identity provider, so roles
withdrawn there stop working here within ``FEDERATOR_SESSION_REFRESH_MINUTES``.

With a refresh token the broker first asks the token endpoint for a new access
token (``grant_type=refresh_token``); then it reads the userinfo endpoint with
the access token. An answer of 400 or 401 (the grant revoked, the account gone,
the access token expired and nothing to renew it with) means the provider no
longer vouches for the session: ``Withdrawn``, and the session ends. An
unreachable provider or a 5xx is ``ProviderUnavailable``: nothing is decided,
and pages that need sign-in answer 503 until it is back.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import requests

from federator.auth.tokens import ProviderUnavailable


class Withdrawn(Exception):
    """The provider no longer vouches for this session; the message is safe to log."""


@dataclass(frozen=True)
class Client:
    """The broker as a client of the provider."""

    client_id: str
    client_secret: str | None
    timeout_s: float = 10.0


def due(now: float, checked_at: Any, signed_in_at: Any, every_s: float) -> bool:
    """Whether the roles must be read again (a session without a time is due)."""
    last = checked_at if isinstance(checked_at, int | float) else signed_in_at
    if not isinstance(last, int | float) or isinstance(last, bool):
        return True
    return now - last >= every_s or last > now + 60


def tokens_from(answer: Mapping[str, Any], previous: Mapping[str, Any] | None = None,
                now: float | None = None) -> dict[str, Any]:
    """What the session keeps of a token endpoint's answer (a refresh answer may
    leave out the refresh token or the ID token: the previous ones still hold)."""
    previous = previous or {}
    now = time.time() if now is None else now
    expires_in = answer.get("expires_in")
    kept = {
        "access_token": answer.get("access_token"),
        "refresh_token": answer.get("refresh_token") or previous.get("refresh_token"),
        "id_token": answer.get("id_token") or previous.get("id_token"),
        "expires_at": (now + float(expires_in) if isinstance(expires_in, int | float)
                       and not isinstance(expires_in, bool) else None),
    }
    return {k: v for k, v in kept.items() if v is not None}


def reread(http: requests.Session, metadata: Mapping[str, Any], tokens: Mapping[str, Any],
           client: Client) -> tuple[dict[str, Any], dict[str, Any]]:
    """The provider's current claims about the user, and the tokens to keep."""
    kept = dict(tokens)
    token_endpoint = metadata.get("token_endpoint")
    if kept.get("refresh_token") and token_endpoint:
        data = {"grant_type": "refresh_token", "refresh_token": kept["refresh_token"]}
        auth = None
        if client.client_secret:
            auth = (client.client_id, client.client_secret)
        else:
            data["client_id"] = client.client_id
        answer = _call(http.post, str(token_endpoint), data=data, auth=auth,
                       timeout=client.timeout_s)
        kept = tokens_from(answer, kept)
    userinfo = metadata.get("userinfo_endpoint")
    if not userinfo:
        raise Withdrawn("the provider publishes no userinfo endpoint")
    if not kept.get("access_token"):
        raise Withdrawn("no access token to read the user's claims with")
    claims = _call(http.get, str(userinfo), timeout=client.timeout_s,
                   headers={"Authorization": f"Bearer {kept['access_token']}",
                            "Accept": "application/json"})
    return claims, kept


def _call(method: Any, url: str, **kwargs: Any) -> dict[str, Any]:
    try:
        response = method(url, allow_redirects=False, **kwargs)
    except requests.RequestException as e:
        raise ProviderUnavailable("identity provider unreachable") from e
    if response.status_code in (400, 401, 403):
        raise Withdrawn(f"the provider refused ({response.status_code})")
    if response.status_code != 200:
        raise ProviderUnavailable(f"identity provider answered {response.status_code}")
    try:
        data = response.json()
    except ValueError as e:
        raise ProviderUnavailable("identity provider answered with no JSON") from e
    if not isinstance(data, dict):
        raise ProviderUnavailable("identity provider answered with no JSON object")
    return data
