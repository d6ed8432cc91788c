"""The soak's memory summary (benchmarks/soak_memory.py): flat and creeping told apart."""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import soak_memory


def samples(per_lookup_mib: list[float]) -> list[dict[str, object]]:
    out, rss = [], 100.0
    for i, step in enumerate(per_lookup_mib):
        rss += step
        out.append(soak_memory.sample(i * 10, i * 1000, {1: {"rss": rss, "anon": rss / 2,
                                                             "file": rss / 2}}))
    return out


def test_a_creep_that_levels_off_shows_a_smaller_second_half() -> None:
    result = soak_memory.summary(samples([0, 4, 3, 2, 1, 0.5, 0, 0, 0, 0, 0]))
    assert result["first_half_mib_per_1000"] > 1.5
    assert result["second_half_mib_per_1000"] == 0.0
    assert result["points"][0]["lookups"] == 0
    assert result["points"][-1]["lookups"] == 10_000
    assert len(result["points"]) <= 8


def test_a_steady_leak_shows_the_same_slope_in_both_halves() -> None:
    result = soak_memory.summary(samples([0] + [2.0] * 20))
    assert result["first_half_mib_per_1000"] == result["second_half_mib_per_1000"] == 2.0
    assert result["anon_second_half_mib_per_1000"] == 1.0


def test_a_replaced_worker_is_said_and_too_few_samples_give_no_slope() -> None:
    first = soak_memory.sample(0, 0, {1: {"rss": 90.0}})
    later = soak_memory.sample(10, 500, {2: {"rss": 80.0}})
    assert soak_memory.summary([first, later])["workers_replaced"] is True
    assert soak_memory.summary([first])["second_half_mib_per_1000"] is None


def test_this_process_memory_is_read_from_proc() -> None:
    mine = soak_memory.rss_by_pid([os.getpid(), 2**22 + 7])  # the second: no such process
    assert list(mine) == [os.getpid()]
    assert mine[os.getpid()]["rss"] >= mine[os.getpid()]["anon"] > 0
