"""The registry's own outbound HTTP (conformance checks, probes), behind the URL guard.

Checking a URL when it is registered is not enough: its name may resolve
elsewhere by the time the broker connects (DNS rebinding). Both kinds of
client here ask the guard for the address of every new connection and
connect to that address, while the Host header, TLS SNI and the certificate
check keep the registered name:

- ``guarded_client``: the broker's own ``OutboundClient`` with the guard as
  its ``resolve`` hook (probes, the health check of non-lookup kinds);
- ``guarded_session``: a ``requests.Session`` for ``adapters.conformance``,
  whose connection pools use the same checked connections. It ignores proxy
  settings from the environment (a proxy would connect for us, unchecked) and
  follows no redirects (the checks already ask for none; ``max_redirects = 0``
  makes a forgotten ``allow_redirects`` fail rather than follow).
"""

from __future__ import annotations

from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from adapters.base import AddressRefused, OutboundClient, Resolver, _checked_connection
from federator.registry.urlguard import UrlGuard


def _resolver(guard: UrlGuard) -> Resolver:
    # looked up at each connection, so the guard's current resolver is used
    return lambda host, port: guard.resolve_checked(host, port)


def guarded_client(guard: UrlGuard, *, user_agent: str,
                   max_answer_bytes: int = 64 * 1024) -> OutboundClient:
    return OutboundClient(max_answer_bytes=max_answer_bytes, user_agent=user_agent,
                          resolve=_resolver(guard), ca_file=getattr(guard, "ca_file", None))


class GuardedAdapter(HTTPAdapter):
    """A transport adapter whose pools connect only to addresses the guard allows."""

    def __init__(self, resolve: Resolver) -> None:
        self._resolve = resolve
        super().__init__(max_retries=0)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        http = type("GuardedHTTPPool", (HTTPConnectionPool,), {
            "ConnectionCls": _checked_connection(HTTPConnection, self._resolve)})
        https = type("GuardedHTTPSPool", (HTTPSConnectionPool,), {
            "ConnectionCls": _checked_connection(HTTPSConnection, self._resolve)})
        self.poolmanager.pool_classes_by_scheme = {"http": http, "https": https}

    def proxy_manager_for(self, *_: Any, **__: Any) -> Any:
        raise requests.ConnectionError("proxies are not used for calls to authorities")

    def send(self, request: requests.PreparedRequest, *args: Any,
             **kwargs: Any) -> requests.Response:
        try:
            return super().send(request, *args, **kwargs)
        except AddressRefused as e:
            raise requests.ConnectionError(f"address not allowed: {e}",
                                           request=request) from e


def guarded_session(guard: UrlGuard) -> requests.Session:
    session = requests.Session()
    session.trust_env = False
    session.max_redirects = 0
    if getattr(guard, "ca_file", None):
        session.verify = guard.ca_file
    adapter = GuardedAdapter(_resolver(guard))
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session
