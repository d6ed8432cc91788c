"""The broker's client for ``federator-lookup/1`` adapters."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from adapters.base import AdapterError, OutboundClient, Target
from adapters.protocol import PROTOCOL, InvalidAnswer, encode_body, parse_answer

Signer = Callable[[bytes, str], str]
"""``sign(body, audience) -> token``: supplied by the broker, which holds the key."""


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
    protocol = PROTOCOL

    def __init__(self, *, sign: Signer, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.sign = sign

    def lookup(self, target: Target, payload: Mapping[str, Any], *, deadline: float,
               request_id: str | None = None, body: bytes | None = None) -> dict[str, Any]:
        """Ask one authority; the validated answer, or an ``AdapterFailure``.

        ``body`` is ``encode_body(payload)`` when the caller has it already (a
        fan-out encodes the payload once for every authority)."""
        body = encode_body(payload) if body is None else body
        headers = {"Authorization": f"Bearer {self.sign(body, target.id)}"}
        if request_id:
            headers["X-Request-Id"] = request_id
        reply = self.post(target, "/lookup", body, headers, deadline=deadline)
        if reply.status != 200:
            raise AdapterError(status_detail(reply.status))
        try:
            answer = parse_answer(reply.body, str(payload["lookup_id"]))
        except InvalidAnswer as e:
            raise AdapterError(str(e)) from e
        answer["latency_ms"] = reply.elapsed_ms
        return answer
