"""A rate limit on the public proof endpoint, per client address.

``GET /api/v1/transparency/consistency`` needs no sign-in: witnesses (adapter
kits, authorities' own software) ask it for a proof each time they see a newer
checkpoint. A proof reads O(log n) stored nodes, so the limit is not what keeps
the broker up; it keeps one address from taking more than its share.
``FEDERATOR_PROOFS_PER_MINUTE`` (default 120, 0: no limit) proofs per client
address per minute, a moving window counted in Redis when the broker has one
(``limits``, as the lookup budget) and in the process otherwise.

Why 120: a witness asks one proof per new checkpoint it is shown, per process.
At the federation's full append rate (2,000 records a second) a checkpoint is
signed every 1,000 records, so about 120 a minute: one kit process keeps up at
that rate. Most witnesses ask a few a minute (one checkpoint a minute on a
quiet trail); a kit refused sees the proof as unreachable for now (``witness:
unchecked``) and asks again at its next request, so being limited delays a
check and never marks the trail inconsistent.

The client address is the connection's, or, when the connection comes from
a proxy gunicorn trusts (``GUNICORN_FORWARDED_ALLOW_IPS``, as
``config/gunicorn.conf.py`` reads it; default 127.0.0.1), the last address in
``X-Forwarded-For`` that is not such a proxy. IPv6 clients are counted per /64
(one host can hold a whole /64). When Redis cannot be reached the proof is
given, not refused: a witness must not be starved by the broker's state store.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

import redis
from flask import Flask, Response, current_app, jsonify, request
from limits import RateLimitItemPerMinute
from limits.errors import StorageError
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

from federator import metrics
from federator.lookup.budget import retry_after_s
from federator.state import client_options

log = logging.getLogger(__name__)

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
SCOPE = "proofs"


def trusted_proxies(raw: str | None) -> tuple[Network, ...] | None:
    """gunicorn's ``forwarded_allow_ips`` (comma-separated addresses or networks;
    ``*``: any peer). None: every peer is trusted."""
    items = [item.strip() for item in (raw if raw is not None else "127.0.0.1").split(",")]
    if "*" in items:
        return None
    out = []
    for item in items:
        if not item:
            continue
        try:
            out.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            log.warning("GUNICORN_FORWARDED_ALLOW_IPS: %r is not an address or network", item)
    return tuple(out)


def _address(raw: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(raw.strip().strip("[]"))
    except ValueError:
        return None


def _trusted(address: ipaddress.IPv4Address | ipaddress.IPv6Address,
             proxies: Sequence[Network] | None) -> bool:
    return proxies is None or any(address in net for net in proxies)


def client_key(peer: str | None, forwarded_for: str | None,
               proxies: Sequence[Network] | None) -> str:
    """Who to count: the peer, or behind trusted proxies the nearest untrusted
    address they forwarded for; an IPv6 address by its /64."""
    address = _address(peer or "")
    if address is None:
        return "unknown"
    if _trusted(address, proxies) and forwarded_for:
        for hop in reversed(forwarded_for.split(",")):
            forwarded = _address(hop)
            if forwarded is None:
                break  # not an address: stop at the proxy that wrote it
            address = forwarded
            if not _trusted(forwarded, proxies):
                break
    if address.version == 6:
        mapped = address.ipv4_mapped  # type: ignore[union-attr]
        if mapped is not None:
            return str(mapped)
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


class ProofLimit:
    def __init__(self, per_minute: int, *, redis_url: str | None, prefix: str,
                 proxies: Sequence[Network] | None) -> None:
        self.item = RateLimitItemPerMinute(per_minute) if per_minute > 0 else None
        self.proxies = proxies
        options: dict[str, object] = ({**client_options(), "key_prefix": f"{prefix}proofs"}
                                      if redis_url else {})
        self.window = MovingWindowRateLimiter(
            storage_from_string(redis_url or "memory://", **options))

    def retry_after(self, who: str) -> int | None:
        """None when ``who`` may have another proof now; else seconds to wait."""
        if self.item is None:
            return None
        try:
            if self.window.hit(self.item, SCOPE, who):
                return None
            reset_at, _ = self.window.get_window_stats(self.item, SCOPE, who)
        except (redis.RedisError, StorageError) as e:
            log.warning("proof rate limit not counted (%s): the proof is given",
                        type(e).__name__)
            return None
        return retry_after_s(reset_at, time.time())


_LOCK = threading.Lock()


def _limit(app: Flask) -> ProofLimit:
    with _LOCK:
        limit = app.extensions.get("federator_proof_limit")
        if limit is None:
            settings = app.extensions["federator"].settings
            limit = app.extensions["federator_proof_limit"] = ProofLimit(
                settings.proofs_per_minute, redis_url=settings.redis_url,
                prefix=settings.redis_prefix,
                proxies=trusted_proxies(os.environ.get("GUNICORN_FORWARDED_ALLOW_IPS")))
        return limit


def refused(wsgi: Mapping[str, Any] | None = None) -> Response | None:
    """The 429 for this request when its address is over the limit, else None
    (``wsgi``: the request's WSGI environment, not the process's)."""
    limit = _limit(current_app)
    wsgi = wsgi if wsgi is not None else request.environ
    who = client_key(wsgi.get("REMOTE_ADDR"), wsgi.get("HTTP_X_FORWARDED_FOR"), limit.proxies)
    wait = limit.retry_after(who)
    if wait is None:
        return None
    metrics.rate_limited(request.endpoint)
    assert limit.item is not None
    response = jsonify({"code": 429, "status": "Too Many Requests",
                        "message": f"Too many proofs asked from this address (the limit is "
                                   f"{limit.item.amount} a minute). Try again in {wait} "
                                   "seconds.",
                        "scope": SCOPE, "limit": f"{limit.item.amount} per minute",
                        "retry_after": wait})
    response.status_code = 429
    response.headers["Retry-After"] = str(wait)
    response.headers["Cache-Control"] = "no-store"
    return response
