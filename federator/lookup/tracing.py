"""The lookup's span (adapters.tracing): the root of a lookup's trace, parent
of one client span per authority call (``FanOut.run``)."""

from __future__ import annotations

from typing import Any

from adapters.tracing import OFF, Tracing, attributes, note_outcomes

__all__ = ["OFF", "Tracing", "lookup_span", "note_outcomes"]


def lookup_span(tracing: Tracing, lookup_id: str, authorities: int, deadline_ms: int) -> Any:
    """A started span for one lookup, or ``None`` with tracing off."""
    if not tracing.enabled:
        return None
    return tracing.tracer.start_span("federator.lookup", attributes=attributes(
        lookup_id=lookup_id, authorities=authorities, deadline_ms=deadline_ms))
