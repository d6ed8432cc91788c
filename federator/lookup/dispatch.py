"""Adapter dispatch: which client asks an endpoint, with which credentials, and
whether the call runs on the fan-out's event loop or on a thread.

One object, built by the app factory from the installed clients (entry point
group ``federator.adapters``) and injected into the lookup service, which
hands the fan-out one lookup's :class:`~federator.lookup.fanout.Calls`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine, Mapping
from typing import Any

from adapters.base import AdapterError, Target
from federator.logs import outbound_request_id
from federator.lookup.fanout import Answer, Calls
from federator.lookup.routing import Endpoint

Credentials = Callable[[str], Mapping[str, Any]]
"""``credentials(endpoint_id)``: the endpoint's decrypted credentials."""


class Dispatcher:
    def __init__(self, clients: Mapping[str, Any], credentials: Credentials, *,
                 request_id: Callable[..., Mapping[str, Any]] = outbound_request_id) -> None:
        self.clients = dict(clients)
        self.credentials = credentials
        self.request_id = request_id

    def closers(self) -> list[Callable[[], Coroutine[Any, Any, None]]]:
        """What closes the event-loop clients' connections at shutdown."""
        return [c.aclose for c in self.clients.values() if hasattr(c, "aclose")]

    def target(self, endpoint: Endpoint, client: Any) -> Target:
        """Only a client that says it needs credentials is given them."""
        credentials = (self.credentials(endpoint.id)
                       if getattr(client, "needs_credentials", False) else {})
        return Target(id=endpoint.id, url=endpoint.url, timeout_ms=endpoint.timeout_ms,
                      credentials=credentials, name=endpoint.name,
                      policy=json.loads(endpoint.policy) if endpoint.policy else {})

    def ask(self, endpoint: Endpoint, payload: Any, deadline: float) -> Mapping[str, Any]:
        """The call on a thread; raises ``AdapterFailure`` (a protocol not installed
        is that authority's error)."""
        client = self.clients.get(endpoint.protocol)
        if client is None:
            raise AdapterError(f"protocol {endpoint.protocol} is not installed")
        return client.lookup(self.target(endpoint, client), payload, deadline=deadline,
                             **self.request_id(client))  # X-Request-Id

    def aask(self, endpoint: Endpoint, payload: Any, deadline: float) -> Answer | None:
        """The call as a coroutine for the fan-out's event loop when the client has
        ``alookup``; else ``None`` (it runs on a thread through :meth:`ask`)."""
        client = self.clients.get(endpoint.protocol)
        alookup = getattr(client, "alookup", None)
        if alookup is None:
            return None
        result: Answer = alookup(self.target(endpoint, client), payload, deadline=deadline,
                                 **self.request_id(client, "alookup"))
        return result

    def calls(self, payload: Any) -> Calls:
        """One lookup's calls, every authority sent the same payload."""
        return Calls(ask=lambda e, d: self.ask(e, payload, d),
                     aask=lambda e, d: self.aask(e, payload, d))
