"""Pages show UK time with the zone named; the trail keeps UTC."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from federator.web.receipts import receipt_time
from federator.web.times import uk_time, uk_time_long


@pytest.mark.parametrize(("at", "shown"), [
    ("2026-12-03T17:05:09.123+00:00", "3 Dec 2026, 17:05 GMT"),   # winter: London is UTC
    ("2026-07-01T17:05:09Z", "1 Jul 2026, 18:05 BST"),            # summer: an hour on
    ("2026-07-01T17:05:09", "1 Jul 2026, 18:05 BST"),             # no zone: UTC, as written
    ("2026-03-29T00:59:59+00:00", "29 Mar 2026, 00:59 GMT"),       # the clocks go forward
    ("2026-03-29T01:00:00+00:00", "29 Mar 2026, 02:00 BST"),
    ("2026-10-25T00:30:00+00:00", "25 Oct 2026, 01:30 BST"),       # ...and back: 01:30 twice
    ("2026-10-25T01:30:00+00:00", "25 Oct 2026, 01:30 GMT"),
    (datetime(2026, 12, 31, 23, 59, tzinfo=UTC), "31 Dec 2026, 23:59 GMT"),
    ("not a time", "not a time"),
    (None, ""),
])
def test_uk_time(at, shown) -> None:
    assert uk_time(at) == shown


def test_seconds_and_the_long_form() -> None:
    assert uk_time("2026-07-01T17:05:09Z", seconds=True) == "1 Jul 2026, 18:05:09 BST"
    assert uk_time_long("2026-07-01T17:05:09Z") == "1 July 2026 at 18:05:09 BST"
    assert receipt_time("2026-11-26T06:40:01.123+00:00") == "26 November 2026 at 06:40:01 GMT"
