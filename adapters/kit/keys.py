"""The broker's public keys, fetched from its JWKS URL and cached.

The keys come only from ``jwks_url`` itself: no proxy from the environment, no
redirect followed (:func:`jwks_session`). An unknown ``kid`` (the broker rotated
its key) triggers a re-fetch, but at most once every ``min_refresh_s`` seconds,
so a flood of requests with made-up kids cannot hammer the broker. The cache
is also refreshed after ``max_age_s``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import requests
from joserfc.jwk import KeySet


class KeysUnavailable(Exception):
    """The broker's key set cannot be fetched and none is cached."""


class BrokerKeys:
    def __init__(
        self,
        jwks_url: str,
        *,
        timeout_s: float = 5.0,
        min_refresh_s: float = 10.0,
        max_age_s: float = 3600.0,
        session: requests.Session | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.jwks_url = jwks_url
        self.timeout_s = timeout_s
        self.min_refresh_s = min_refresh_s
        self.max_age_s = max_age_s
        self.session = session or jwks_session()
        self._clock = clock
        self._lock = threading.Lock()
        self._keys: KeySet | None = None
        self._kids: frozenset[str] = frozenset()
        self._fetched_at: float | None = None
        self.fetches = 0

    def __call__(self, kid: str | None) -> KeySet:
        with self._lock:
            now = self._clock()
            if self._keys is None or self._stale(now) or (
                kid is not None and kid not in self._kids and self._may_refresh(now)
            ):
                self._refresh(now)
            assert self._keys is not None
            return self._keys

    def _stale(self, now: float) -> bool:
        return self._fetched_at is not None and now - self._fetched_at >= self.max_age_s

    def _may_refresh(self, now: float) -> bool:
        return self._fetched_at is None or now - self._fetched_at >= self.min_refresh_s

    def _refresh(self, now: float) -> None:
        self._fetched_at = now  # also on failure: the rate limit holds either way
        self.fetches += 1
        try:
            response = self.session.get(
                self.jwks_url, timeout=self.timeout_s, allow_redirects=False,
                headers={"Accept": "application/json"},
            )
            if response.status_code != 200:  # a redirect is refused, not followed
                raise requests.HTTPError(f"status {response.status_code}", response=response)
            data: Any = response.json()
            keys = KeySet.import_key_set(_public_only(data))
        except (requests.RequestException, ValueError, TypeError, KeyError) as e:
            if self._keys is None:
                raise KeysUnavailable(f"cannot fetch the broker's keys: {e}") from e
            return  # keep the keys we have
        self._keys = keys
        self._kids = frozenset(k.kid for k in keys.keys if k.kid)


def jwks_session(ca_file: str | None = None) -> requests.Session:
    """The session the keys are fetched with: straight to ``jwks_url``. Proxy
    variables (``HTTPS_PROXY``…), ``.netrc`` and ``REQUESTS_CA_BUNDLE`` in the
    environment are ignored (``trust_env``), and no redirect is followed; the
    broker's certificate is checked against ``ca_file`` (the kit's setting) when
    given, else certifi's store."""
    session = requests.Session()
    session.trust_env = False
    session.max_redirects = 0
    if ca_file:
        session.verify = ca_file
    return session


def _public_only(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict) or not isinstance(data.get("keys"), list):
        raise ValueError("not a JWKS document")
    private = {"d", "p", "q", "dp", "dq", "qi", "k"}
    return {"keys": [
        {k: v for k, v in key.items() if k not in private}
        for key in data["keys"] if isinstance(key, dict)
    ]}
