"""The trail follows the matched child, not the typed details: an authority's
``record_ref`` in ``lookup.completed`` links lookups typed differently, on
SQLite and PostgreSQL; subject access holds such lookups for a person to check."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from federator.audit.pseudonym import child_pseudonym
from federator.audit.queries import lookups_of_child
from federator.audit.subject_access import subject_access
from federator.audit.trail import AuditTrail
from federator.lookup.journey import wire_child
from federator.storage import make_engine, upgrade

pytestmark = pytest.mark.integration
KEY = "k" * 40
LILY = {"given_name": "Lily", "family_name": "Hart", "date_of_birth": "2016-04-02"}
LILQ = {**LILY, "given_name": "Lilq"}  # one wrong letter: another pseudonym
OTHER = {"given_name": "Omar", "family_name": "Reed", "date_of_birth": "2014-01-09"}


@pytest.fixture
def trail(database_url: str, tmp_path: Path):
    engine = make_engine(database_url)
    upgrade(engine)
    yield AuditTrail(engine, checkpoint_every=0)
    engine.dispose()


def pseudonym(child: dict) -> str:
    return child_pseudonym(wire_child(child), KEY)


def lookup(trail: AuditTrail, lookup_id: str, child: dict, refs: dict[str, str], *,
           outcome: str = "match") -> None:
    actor = {"actor_id": "sw-1", "actor_role": "practitioner", "actor_organisation": "Leeds"}
    p = pseudonym(child)
    trail.append("lookup.requested", lookup_id=lookup_id, **actor, purpose="p" * 20,
                 basis_type="consent", basis={"type": "consent"}, child_pseudonym=p,
                 authorities=sorted(refs) or ["leeds-cs"])
    trail.append("lookup.completed", lookup_id=lookup_id, **actor, child_pseudonym=p,
                 complete=True, outcomes=[
                     {"id": a, "outcome": outcome, "latency_ms": 5,
                      "professionals": 1, "record_ref": ref}
                     for a, ref in refs.items()])


def ids(records: list[dict]) -> set[str]:
    return {r["lookup_id"] for r in records}


def test_a_lookup_typed_differently_but_matched_to_the_same_record_is_found(trail):
    lookup(trail, "L1", LILY, {"leeds-cs": "ref-lily"})
    lookup(trail, "L2", LILQ, {"leeds-cs": "ref-lily"})
    lookup(trail, "L3", OTHER, {"leeds-cs": "ref-omar"})
    assert ids(lookups_of_child(trail.engine, [pseudonym(LILY)])) == {"L1", "L2"}
    assert ids(lookups_of_child(trail.engine, [pseudonym(LILQ)])) == {"L1", "L2"}
    assert ids(lookups_of_child(trail.engine, [pseudonym(OTHER)])) == {"L3"}


def test_the_same_reference_from_another_authority_links_nothing(trail):
    lookup(trail, "L1", LILY, {"leeds-cs": "ref-1"})
    lookup(trail, "L2", OTHER, {"york-health": "ref-1"})  # refs are each authority's own
    assert ids(lookups_of_child(trail.engine, [pseudonym(LILY)])) == {"L1"}


def test_links_follow_through_more_than_one_authority(trail):
    lookup(trail, "L1", LILY, {"leeds-cs": "a1"})
    lookup(trail, "L2", LILQ, {"leeds-cs": "a1", "york-health": "b1"})
    lookup(trail, "L3", {**LILY, "family_name": "Harte"}, {"york-health": "b1"})
    assert ids(lookups_of_child(trail.engine, [pseudonym(LILY)])) == {"L1", "L2", "L3"}


def test_subject_access_holds_lookups_found_through_a_match_for_review(trail):
    lookup(trail, "L1", LILY, {"leeds-cs": "ref-lily"})
    lookup(trail, "L2", LILQ, {"leeds-cs": "ref-lily"})
    report, _ = subject_access(trail.engine, LILY, KEY, "SAR-1")
    found = {i["lookup_id"]: i["found_by"] for i in report["lookups"]}
    assert found == {"L1": "details", "L2": "record_match"}
    assert [i["lookup_id"] for i in report["to_review"]] == ["L2"]


def test_a_reference_on_an_answer_that_is_not_a_match_is_not_kept(trail):
    lookup(trail, "L1", LILY, {"leeds-cs": "ref-1"}, outcome="no_match")
    lookup(trail, "L2", LILQ, {"leeds-cs": "ref-1"}, outcome="no_match")
    assert ids(lookups_of_child(trail.engine, [pseudonym(LILY)])) == {"L1"}


@pytest.fixture
def strict_trail(database_url: str):
    from federator.audit.flags import FlagLimits

    engine = make_engine(database_url)
    upgrade(engine)
    trail = AuditTrail(engine, checkpoint_every=0, flag_limits=FlagLimits(repeat_lookups=2))
    # inside office hours whenever the test runs (it asserts no other flag is raised)
    noon = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
    trail.clock = lambda: noon
    yield trail
    engine.dispose()


def flags_of(trail: AuditTrail, lookup_id: str, event: str) -> list[str]:
    [record] = [r for r in trail.records(lookup_id=lookup_id) if r["event"] == event]
    return [f["flag"] for f in record.get("flags") or []]


def test_repeat_lookups_typed_differently_are_flagged_when_the_answer_links_them(
        strict_trail):
    spellings = [LILY, LILQ, {**LILY, "family_name": "Harte"}]
    for i, child in enumerate(spellings, 1):
        lookup(strict_trail, f"L{i}", child, {"leeds-cs": "ref-lily"})
    # each typed once: the question itself raises nothing; the third answer does
    assert [flags_of(strict_trail, f"L{i}", "lookup.requested") for i in (1, 2, 3)] == \
        [[], [], []]
    assert [flags_of(strict_trail, f"L{i}", "lookup.completed") for i in (1, 2, 3)] == \
        [[], [], ["repeat_lookups"]]
    flagged = strict_trail.records(lookup_id="L3")[-1]["flags"][0]["reason"]
    assert flagged.startswith("3 lookups of this child") and "same record" in flagged


def test_repeats_typed_the_same_way_are_flagged_once_on_the_question(strict_trail):
    for i in (1, 2, 3):
        lookup(strict_trail, f"L{i}", LILY, {"leeds-cs": "ref-lily"})
    assert flags_of(strict_trail, "L3", "lookup.requested") == ["repeat_lookups"]
    assert flags_of(strict_trail, "L3", "lookup.completed") == []


def test_other_childrens_lookups_are_not_repeats(strict_trail):
    for i, ref in enumerate(("a", "b", "c"), 1):
        lookup(strict_trail, f"L{i}", {**OTHER, "given_name": f"Omar{'x' * i}"},
               {"leeds-cs": ref})
    assert flags_of(strict_trail, "L3", "lookup.completed") == []
