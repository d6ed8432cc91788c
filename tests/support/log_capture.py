"""The broker's log lines, captured (JSON, as it writes them) or read from a file,
and what must never be in them: a child's NHS number, names and date of birth."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from federator.logs import JsonFormatter


@contextmanager
def json_logs(level: int = logging.DEBUG) -> Iterator[io.StringIO]:
    """Every log line of this process, as the broker writes them (JSON), into a buffer."""
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    root.handlers[:] = [handler]
    root.setLevel(level)
    try:
        yield buffer
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])


def identity_strings(children: Sequence[dict[str, Any]]) -> set[str]:
    """What must never be in a log line: NHS numbers (also spaced), names, dates of birth."""
    found: set[str] = set()
    for child in children:
        nhs = child.get("nhs_number")
        if nhs:
            found |= {nhs, f"{nhs[:3]} {nhs[3:6]} {nhs[6:]}"}
        for key in ("given_name", "family_name"):
            if child.get(key):
                found.add(child[key])
                found.add(json.dumps(child[key])[1:-1])  # as escaped in JSON
        dob = child.get("date_of_birth")
        if dob:
            found.add(dob)
            y, m, d = dob.split("-")
            found |= {f"{d}/{m}/{y}", f"{y}{m}{d}"}
    return found


def leaks(lines: Sequence[str], secrets: set[str]) -> list[tuple[str, str]]:
    return [(s, line) for line in lines for s in secrets if s and s in line]


def read_path(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8", errors="replace").splitlines()
