"""Lookup budgets no test of something else runs into: the per-practitioner, the
refused and the organisation's (``federator.lookup.budget``). A module testing
the budget itself sets its own (tests/integration/test_lookup_budget.py)."""

from __future__ import annotations

UNLIMITED: dict[str, int] = {
    "lookups_per_minute": 100000, "lookups_per_day": 1000000,
    "refused_lookups_per_minute": 100000, "refused_lookups_per_day": 1000000,
    "organisation_lookups_per_minute": 100000, "organisation_lookups_per_day": 1000000,
}
