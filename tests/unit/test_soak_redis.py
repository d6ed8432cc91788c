"""The soak's Redis restart rows (benchmarks/soak_redis.py): recovery and refusals."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from soak_redis import Answer, Restart, recovery, summary, table


def test_recovery_counts_from_redis_answering_to_the_first_lookup_sent_after_it() -> None:
    answers = [
        Answer(9.0, 9.2, "200"),    # before the restart
        Answer(10.1, 10.2, "503"),  # while down
        Answer(10.5, 12.5, "200"),  # sent while down, answered after: not a recovery
        Answer(12.1, 12.3, "503"),  # refused after Redis answered
        Answer(12.4, 13.0, "200"),  # the first working one
        Answer(13.1, 13.2, "200"),
    ]
    [row] = recovery([Restart(10.0, 12.0)], answers)
    assert row == {"down_s": 10.0, "down_for_s": 2.0, "recovered_s": 1.0,
                   "refused_after_back": 1, "last_refused_s": 0.3, "refused_while_down": 1}


def test_each_restart_counts_only_until_the_next_one() -> None:
    answers = [Answer(12.5, 12.6, "200"), Answer(20.5, 20.6, "503"), Answer(23.0, 23.1, "503"),
               Answer(22.9, 23.5, "B:ConnectionError")]
    first, second = recovery([Restart(20.0, 22.0), Restart(10.0, 12.0)], answers)
    assert first["down_s"] == 10.0 and first["recovered_s"] == 0.6
    assert first["refused_after_back"] == 0  # the 503 at 20.6 belongs to the next restart
    assert second["refused_while_down"] == 1
    assert second["recovered_s"] is None and second["refused_after_back"] == 1
    assert summary([first, second]) == {
        "restarts": 2, "never_recovered": 1, "worst_recovered_s": 0.6,
        "refused_after_back_total": 1, "refused_after_back_worst": 1}


def test_the_table_says_never_when_no_lookup_worked_again() -> None:
    rows = recovery([Restart(10.0, 12.0)], [Answer(12.5, 12.6, "503")])
    lines = table(rows)
    assert "never" in lines[1] and "1 (last at 0.60)" in lines[1]
    assert table([]) == []
