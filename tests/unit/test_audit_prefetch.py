"""``reading.prefetched``: verification's rows read a chunk ahead by a thread of
their own; every row in order, a failure raised where the walk is, and a walk
stopped early stops the reader and closes what it reads."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from federator.audit.reading import prefetched


def chunks(n: int, size: int, log: list[str], fail_at: int | None = None
           ) -> Iterator[list[tuple[int]]]:
    try:
        for i in range(n):
            if i == fail_at:
                raise RuntimeError("the database went away")
            yield [(i * size + j,) for j in range(size)]
    finally:
        log.append(f"closed in {threading.current_thread().name}")


def test_every_row_in_order():
    log: list[str] = []
    assert [r[0] for r in prefetched(chunks(50, 7, log))] == list(range(350))
    assert log == ["closed in audit-verify-reader"]


def test_a_failure_reading_is_raised_in_the_walk():
    log: list[str] = []
    rows = prefetched(chunks(10, 3, log, fail_at=4))
    with pytest.raises(RuntimeError, match="went away"):
        for _ in rows:
            pass
    assert log == ["closed in audit-verify-reader"]


def test_a_walk_stopped_early_stops_the_reader_and_closes_the_rows():
    log: list[str] = []
    rows = prefetched(chunks(10_000, 10, log))
    assert next(rows) == (0,)
    rows.close()
    assert log == ["closed in audit-verify-reader"]
    assert not any(t.name == "audit-verify-reader" for t in threading.enumerate())
