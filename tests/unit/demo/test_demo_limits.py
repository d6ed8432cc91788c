"""The demo's limits are roomy enough to try things (issue 22): the settings the
demo reads allow far more lookups than production's defaults, and a limit set in
the environment still wins."""

from __future__ import annotations

from federator.config import Settings
from federator.demo.cli import demo_environ


def test_the_demo_allows_many_more_lookups_than_production_defaults() -> None:
    demo = Settings.from_env(demo_environ({}))
    default = Settings()
    assert demo.env == "development"
    assert demo.lookups_per_minute >= 100 > default.lookups_per_minute
    assert demo.lookups_per_day >= 5000 > default.lookups_per_day
    assert demo.refused_lookups_per_minute > default.refused_lookups_per_minute
    assert demo.organisation_lookups_per_minute >= demo.lookups_per_minute * 2


def test_a_limit_set_in_the_environment_wins_and_production_is_never_taken() -> None:
    demo = Settings.from_env(demo_environ({"FEDERATOR_LOOKUPS_PER_MINUTE": "3",
                                           "FEDERATOR_ENV": "production"}))
    assert demo.lookups_per_minute == 3 and demo.env == "development"
