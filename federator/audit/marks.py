"""The marks pruning and redaction leave, checked as ``verify`` walks the chain.

Pure: ``verify_chain`` hands every record to :class:`Marks`. A pruned record
(body ``''``, its ``leaf`` kept) must be covered by an ``audit.pruned`` record
later in the trail (each one covers everything pruned so far: ``first`` to
``last``). A redacted text (``{"redacted": R}`` in ``texts``) must be named, with
its field, by the ``audit.redacted`` record R, later in the trail. A body emptied,
or a text removed, any other way fails verification, and so does a text that no
longer matches its sealed hash (``redaction.check_texts``).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import EllipsisType
from typing import Any

from federator.audit.redaction import check_texts
from federator.names import AUDIT_PRUNED, AUDIT_REDACTED

Problem = tuple[int, str]  # (record, what is wrong)


class Marks:
    def __init__(self) -> None:
        #: runs of pruned records seen and not yet covered by an audit.pruned record
        self.unclaimed: list[list[int]] = []
        #: audit.redacted record -> the (record, field) markers pointing at it
        self.wanted: dict[int, list[tuple[int, str]]] = {}
        #: each audit.pruned record reached: what it pruned, when, by whom
        self.prunes: list[dict[str, Any]] = []
        self.first_pruned: int | None = None
        self.last_pruned: int | None = None

    def pruned(self, seq: int) -> None:
        if self.unclaimed and self.unclaimed[-1][1] == seq - 1:
            self.unclaimed[-1][1] = seq
        else:
            self.unclaimed.append([seq, seq])
        if self.first_pruned is None:
            self.first_pruned = seq
        self.last_pruned = seq

    def record(self, seq: int, body: Mapping[str, Any], texts: str | EllipsisType | None
               ) -> Problem | None:
        """Check one record that still has its body (``texts``: ``...`` when not known)."""
        if texts is not ... and (body.get("sealed") is not None or texts is not None):
            problem, claims = check_texts(body, texts)
            if problem is not None:
                return seq, problem
            for by, field in claims:
                if by <= seq:
                    return seq, (f"the text of {field} is marked redacted by record {by}, "
                                 "which is not after it")
                self.wanted.setdefault(by, []).append((seq, field))
        marked = self.wanted.pop(seq, None)
        if marked is not None:
            for target, field in marked:
                if (body.get("event") != AUDIT_REDACTED or body.get("record") != target
                        or body.get("field") != field):
                    return target, (f"the text of {field} is marked redacted by record "
                                    f"{seq}, which does not say so")
        if body.get("event") == AUDIT_PRUNED:
            return self._pruned_by(seq, body)
        return None

    def _pruned_by(self, seq: int, body: Mapping[str, Any]) -> Problem | None:
        first, last = body.get("first"), body.get("last")
        if not (isinstance(first, int) and isinstance(last, int) and first <= last < seq):
            return seq, "an audit.pruned record with an unreadable range"
        self.unclaimed = [run for run in self.unclaimed if not first <= run[0] <= run[1] <= last]
        newly = body.get("newly")
        if not (isinstance(newly, list) and len(newly) == 2
                and all(isinstance(n, int) for n in newly)):
            newly = [first, last]
        self.prunes.append({"first": newly[0], "last": newly[-1], "on": body.get("at"),
                            "by": body.get("actor_id"), "seq": seq})
        return None

    def finish(self, *, complete: bool) -> Problem | None:
        """At the end of the walk; ``complete`` when it reached the trail's head
        (a walk cut short with ``--to`` cannot see the marks after it)."""
        if not complete:
            return None
        if self.unclaimed:
            run = self.unclaimed[0]
            return run[0], ("its body is gone, but no audit.pruned record covers it: "
                            "emptied outside pruning")
        for by in sorted(self.wanted):
            target, field = self.wanted[by][0]
            return target, (f"the text of {field} is marked redacted by record {by}, "
                            "which does not exist")
        return None

    def report(self) -> tuple[dict[str, Any], ...]:
        """The pruned range as the walk saw it, with the audit.pruned records reached."""
        if self.first_pruned is None:
            return ()
        return ({"first": self.first_pruned, "last": self.last_pruned,
                 "prunes": list(self.prunes)},)
