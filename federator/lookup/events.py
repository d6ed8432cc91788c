"""The events of one lookup as the faces read them: ``("authority", outcome)``
per authority as it answers, then ``("result", answer)``."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

Event = tuple[str, dict[str, Any]]


class LookupEvents(Iterator[Event]):
    """``close()`` (the client went away) finishes the fan-out within its deadline
    and writes ``lookup.completed`` all the same, whether or not reading had started.

    ``answer(listening)`` makes the events; it is given a function that says
    whether anyone still listens, and yields nothing more once nobody does."""

    def __init__(self, lookup_id: str, authorities: Sequence[str],
                 answer: Callable[[Callable[[], bool]], Iterator[Event]]) -> None:
        self.lookup_id = lookup_id
        #: every authority this lookup reports on (asked, or unavailable without asking)
        self.authorities = tuple(authorities)
        self.listening = True
        self._finished = False
        self._events = answer(lambda: self.listening)

    def __next__(self) -> Event:
        try:
            return next(self._events)
        except StopIteration:
            self._finished = True
            raise

    def result(self) -> dict[str, Any]:
        """Read every event and give the merged answer (for a face that does not
        stream); the lookup is closed, so finished and audited, whatever happens."""
        answer: dict[str, Any] = {}
        try:
            for kind, data in self:
                if kind == "result":
                    answer = data
        finally:
            self.close()
        return answer

    def close(self) -> None:
        if self._finished:
            return
        self.listening = False
        self._finished = True
        for _ in self._events:  # yields nothing more once nobody listens
            pass
