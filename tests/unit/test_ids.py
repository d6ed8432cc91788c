"""Lookup identifiers are ULIDs: 26 Crockford base32 characters, time first."""

from __future__ import annotations

import re
import time

from hypothesis import given
from hypothesis import strategies as st

from federator.lookup.ids import new_lookup_id

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
ULID = re.compile(r"\A[0-7][0-9A-HJKMNP-TV-Z]{25}\Z")
MAX_MS = 2**48 - 1


def decode(ulid: str) -> int:
    value = 0
    for char in ulid:
        value = value * 32 + CROCKFORD.index(char)
    return value


def test_a_lookup_id_is_26_crockford_characters():
    lookup_id = new_lookup_id()
    assert len(lookup_id) == 26
    assert ULID.match(lookup_id), lookup_id


def test_the_timestamp_is_now_in_milliseconds():
    before = int(time.time() * 1000)
    lookup_id = new_lookup_id()
    after = int(time.time() * 1000)
    assert before <= decode(lookup_id) >> 80 <= after


@given(st.integers(0, MAX_MS))
def test_the_first_ten_characters_encode_the_given_time(now_ms):
    lookup_id = new_lookup_id(now_ms)
    assert ULID.match(lookup_id)
    assert decode(lookup_id) >> 80 == now_ms
    assert decode(lookup_id[:10]) == now_ms


def test_known_encoding():
    # 1469918176385 ms is 01ARYZ6S41 in the ULID specification's example.
    assert new_lookup_id(1469918176385)[:10] == "01ARYZ6S41"
    assert new_lookup_id(0)[:10] == "0" * 10
    assert new_lookup_id(MAX_MS)[:10] == "7ZZZZZZZZZ"


@given(st.integers(0, MAX_MS - 1), st.integers(1, 10**6))
def test_ids_sort_by_time_as_text(earlier, gap):
    later = min(earlier + gap, MAX_MS)
    assert new_lookup_id(earlier) < new_lookup_id(later)


def test_ids_from_the_same_millisecond_differ_in_their_random_part():
    ids = {new_lookup_id(1_700_000_000_000) for _ in range(1000)}
    assert len(ids) == 1000
    assert {i[:10] for i in ids} == {new_lookup_id(1_700_000_000_000)[:10]}
    assert len({i[10:] for i in ids}) == 1000
