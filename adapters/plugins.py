"""Adapter kinds, installed as plug-ins through the ``federator.adapters`` entry
point group.

An entry point's name is the protocol (``federator-lookup/1``, ``fhir-r4``, …);
its object is a client class (or factory) that the broker builds once with a
:class:`ClientContext`:

- if it has a ``from_context(context)`` class method, that is called;
- otherwise it is called with the keyword arguments ``sign``,
  ``max_answer_bytes``, ``user_agent`` (and ``resolve`` when the broker
  guards addresses) (the shape of
  :class:`adapters.lookup_v1.LookupV1Client`).

The client it returns must offer ``lookup(target, payload, *, deadline)``,
returning a ``federator-lookup/1`` answer (``status``, ``confidence``,
``professionals``, ``notice``) or raising :class:`adapters.base.AdapterFailure`.
A client may also offer ``async alookup(target, payload, *, deadline)``, the same
call as a coroutine: the broker then runs it on the fan-out's event loop (one
thread for every call of every lookup; it must never block) instead of on a
pool thread. ``request_id=`` is passed to either when the method takes it.
A client with ``needs_credentials = True`` gets the endpoint's decrypted
registry credentials in ``target.credentials``; others get none.
A plug-in that cannot be loaded is left out and logged (by name, with the
error's type), so one broken package does not stop the broker.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import Any, Protocol

from adapters.base import Target

log = logging.getLogger("adapters.plugins")

GROUP = "federator.adapters"


class AdapterClient(Protocol):
    protocol: str

    def lookup(self, target: Target, payload: Mapping[str, Any], *,
               deadline: float) -> Mapping[str, Any]: ...


@dataclass(frozen=True)
class ClientContext:
    """What the broker gives every client it builds."""

    sign: Callable[[bytes, str], str]
    max_answer_bytes: int = 1024 * 1024
    user_agent: str = "federator"
    #: the most professionals read from one answer (``adapters.protocol.parse_answer``)
    max_professionals: int = 200
    redis: Any = None  # a redis.Redis for shared short-lived state (OAuth tokens), or None
    redis_prefix: str = "federator:"
    resolve: Any = None  # adapters.base resolver that checks each new connection's address
    #: ``checkpoint() -> str | None``: the broker's latest signed audit checkpoint (JWS
    #: compact), for clients whose authorities witness it (``federator-lookup/1`` sends
    #: it as the ``Federator-Checkpoint`` header; see docs/protocol.md)
    checkpoint: Callable[[], str | None] | None = None
    #: a PEM bundle of the CAs to trust for authorities' https, instead of the system's
    ca_file: str | None = None


def _entry_points() -> list[EntryPoint]:
    return sorted(entry_points(group=GROUP), key=lambda ep: ep.name)


def installed_kinds() -> list[str]:
    """The protocol names installed (for the registry's choice of protocol)."""
    return sorted({ep.name for ep in _entry_points()})


def build_client(factory: Any, context: ClientContext) -> AdapterClient:
    if hasattr(factory, "from_context"):
        client = factory.from_context(context)
    else:
        extra = {"resolve": context.resolve} if context.resolve is not None else {}
        client = factory(sign=context.sign, max_answer_bytes=context.max_answer_bytes,
                         user_agent=context.user_agent, **extra)
    if not callable(getattr(client, "lookup", None)):
        raise TypeError(f"{factory!r} built a client without lookup()")
    return client  # type: ignore[no-any-return]


def load_clients(context: ClientContext) -> dict[str, AdapterClient]:
    """One client per installed kind, keyed by protocol name."""
    clients: dict[str, AdapterClient] = {}
    for ep in _entry_points():
        if ep.name in clients:
            log.warning("adapter kind %s is installed twice; the first is used", ep.name)
            continue
        try:
            clients[ep.name] = build_client(ep.load(), context)
        except Exception as e:  # a broken plug-in must not stop the broker
            log.error("adapter kind %s could not be loaded: %s", ep.name, type(e).__name__)
    return clients
