"""The broker's client for ``federator-lookup/1`` adapters."""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Mapping
from typing import Any

from adapters.aio import AsyncOutboundClient
from adapters.base import AdapterError, OutboundClient, Reply, Target
from adapters.protocol import (
    CHECKPOINT_HEADER,
    PROTOCOL,
    InvalidAnswer,
    encode_body,
    parse_answer,
)
from adapters.wire_professional import MAX_PROFESSIONALS

Signer = Callable[[bytes, str], str]
"""``sign(body, audience) -> token``: supplied by the broker, which holds the key."""
CheckpointSource = Callable[[], "str | None"]
"""``checkpoint() -> JWS compact or None``: the broker's latest signed audit checkpoint."""


def status_detail(status: int) -> str:
    """A short reason for an answer that is not ``200``."""
    if status == 401:
        return "HTTP 401: the authority refused the broker's signed request"
    if status == 413:
        return "HTTP 413: the authority refused the request as too large"
    if 300 <= status < 400:
        return f"HTTP {status}: redirects are not followed"
    return f"HTTP {status}"


class LookupV1Client(OutboundClient):
    """Speaks ``federator-lookup/1``: ``lookup`` on a thread (conformance checks,
    tools), ``alookup`` on the fan-out's event loop (the broker's hot path)."""

    protocol = PROTOCOL

    def __init__(self, *, sign: Signer, max_professionals: int = MAX_PROFESSIONALS,
                 checkpoint: CheckpointSource | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.sign = sign
        self.max_professionals = max_professionals
        self.checkpoint = checkpoint
        self.aio = AsyncOutboundClient(**{k: v for k, v in kwargs.items() if k in (
            "max_answer_bytes", "max_header_bytes", "pool_size", "user_agent", "resolve",
            "ca_file")})

    @classmethod
    def from_context(cls, context: Any) -> LookupV1Client:
        """Built by :mod:`adapters.plugins` for the broker, with its checkpoint source."""
        extra = {"resolve": context.resolve} if context.resolve is not None else {}
        if getattr(context, "ca_file", None):
            extra["ca_file"] = context.ca_file
        return cls(sign=context.sign, checkpoint=context.checkpoint,
                   max_answer_bytes=context.max_answer_bytes,
                   max_professionals=context.max_professionals,
                   user_agent=context.user_agent, **extra)

    def lookup(self, target: Target, payload: Mapping[str, Any], *, deadline: float,
               request_id: str | None = None, body: bytes | None = None) -> dict[str, Any]:
        """Ask one authority; the validated answer, or an ``AdapterFailure``.

        ``body`` is ``encode_body(payload)`` when the caller has it already (a
        fan-out encodes the payload once for every authority)."""
        body = encode_body(payload) if body is None else body
        reply = self.post(target, "/lookup", body, self._headers(target, body, request_id),
                          deadline=deadline)
        return _answer(reply, payload, self.max_professionals)

    def alookup(self, target: Target, payload: Mapping[str, Any], *, deadline: float,
                request_id: str | None = None) -> Coroutine[Any, Any, dict[str, Any]]:
        """``lookup`` as a coroutine for the fan-out's event loop. The request is
        signed and its checkpoint read here, on the caller's thread: the loop, which
        carries every lookup's calls, only sends and reads."""
        body = encode_body(payload)
        return self._alookup(target, payload, body, self._headers(target, body, request_id),
                             deadline)

    async def _alookup(self, target: Target, payload: Mapping[str, Any], body: bytes,
                       headers: dict[str, str], deadline: float) -> dict[str, Any]:
        reply = await self.aio.post(target, "/lookup", body, headers, deadline=deadline)
        return _answer(reply, payload, self.max_professionals)

    async def aclose(self) -> None:
        """Close the running loop's idle connections."""
        await self.aio.aclose()

    def _headers(self, target: Target, body: bytes, request_id: str | None) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self.sign(body, target.id)}"}
        if request_id:
            headers["X-Request-Id"] = request_id
        signed = self.checkpoint() if self.checkpoint is not None else None
        if signed:  # outside the body: its bytes and their hash stay the same for all
            headers[CHECKPOINT_HEADER] = signed
        return headers


def _answer(reply: Reply, payload: Mapping[str, Any], max_professionals: int
            ) -> dict[str, Any]:
    if reply.status != 200:
        raise AdapterError(status_detail(reply.status))
    try:
        answer = parse_answer(reply.body, str(payload["lookup_id"]),
                              max_professionals=max_professionals)
    except InvalidAnswer as e:
        raise AdapterError(str(e)) from e
    answer["latency_ms"] = reply.elapsed_ms
    return answer
