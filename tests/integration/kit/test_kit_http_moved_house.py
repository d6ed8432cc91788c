"""A kit configured with ``moved_house = "match_if_unique"``, over HTTP: a child
at a new address is answered with the professionals and a notice; a shielded
child still gets only the shield notice."""

from __future__ import annotations

import dataclasses

import pytest

from adapters.kit.matching import MOVED_HOUSE_NOTICE
from adapters.kit.settings import KitSettings

pytestmark = pytest.mark.integration


@pytest.fixture
def kit_settings(kit_settings: KitSettings) -> KitSettings:
    return dataclasses.replace(kit_settings, moved_house="match_if_unique")


def test_moved_child_is_matched_with_the_notice(post_lookup, make_body) -> None:
    child = {"given_name": "Amara", "family_name": "Okafor", "date_of_birth": "2015-03-12",
             "postcodes": ["HX7 5GQ"]}
    answer = post_lookup(make_body(child=child)).json()
    assert answer["status"] == "match" and answer["notice"] == MOVED_HOUSE_NOTICE
    assert {p["name"] for p in answer["professionals"]} == {"Sam Patel", "Jo Reed"}


def test_moved_shielded_child_gets_only_the_shield_notice(post_lookup, make_body) -> None:
    child = {"given_name": "Ben", "family_name": "Shield", "date_of_birth": "2012-07-07",
             "postcodes": ["HX7 5GQ"]}
    answer = post_lookup(make_body(child=child)).json()
    assert answer["status"] == "match" and answer["professionals"] == []
    assert answer["notice"] == "Call the duty manager on 01632 960999"
