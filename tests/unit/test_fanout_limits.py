"""Pure parts of the fan-out: per-call limits from the time left, short reasons."""

from __future__ import annotations

from adapters.base import CONNECT_LIMIT_S, call_limits
from adapters.lookup_v1 import status_detail


def test_each_call_gets_the_time_left_before_the_deadline() -> None:
    assert call_limits(100.0, 101.5, 10000) == (1.5, 1.5)


def test_connect_is_capped_but_read_gets_all_the_time_left() -> None:
    connect, read = call_limits(100.0, 110.0, 30000)
    assert (connect, read) == (CONNECT_LIMIT_S, 10.0)


def test_the_endpoint_own_limit_applies_when_shorter() -> None:
    assert call_limits(100.0, 110.0, 2000) == (2.0, 2.0)


def test_no_time_left_gives_nothing_to_wait_for() -> None:
    assert call_limits(100.0, 99.0, 2000)[1] <= 0


def test_refused_signature_and_statuses_have_short_reasons() -> None:
    assert "signed request" in status_detail(401)
    assert status_detail(503) == "HTTP 503"
    assert "redirect" in status_detail(302)
