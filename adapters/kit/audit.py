"""A small local record of the lookups this authority received (JSON lines).

Holds who asked, on what basis type and what the adapter answered: never the
child's details, never the professionals.
"""

from __future__ import annotations

import json
import os
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


class AuditLog:
    def __init__(self, path: str | os.PathLike[str] | None) -> None:
        self.path = Path(path) if path else None
        self._lock = threading.Lock()
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)

    def record(
        self,
        *,
        lookup_id: str | None,
        requester_id: str | None,
        requester_organisation: str | None,
        basis_type: str | None,
        outcome: str,
        reason: str | None = None,
    ) -> None:
        if self.path is None:
            return
        entry: dict[str, Any] = {
            "at": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "lookup_id": lookup_id,
            "requester_id": requester_id,
            "requester_organisation": requester_organisation,
            "basis_type": basis_type,
            "outcome": outcome,
        }
        if reason:
            entry["reason"] = reason
        line = json.dumps(entry, ensure_ascii=False) + "\n"
        with self._lock, self.path.open("a", encoding="utf-8") as fh:
            fh.write(line)
