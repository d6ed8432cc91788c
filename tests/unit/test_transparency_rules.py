"""The transparency rules as plain functions: the misuse flags, which
authorities a retry asks, and what a receipt holds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from federator.audit.checkpoints import Checkpoint
from federator.audit.flags import (
    FlagLimits,
    History,
    lookup_flags,
    name_parts,
    own_family_name_flag,
    practitioner_family_name,
)
from federator.lookup.followups import (
    LookupRecords,
    NotYours,
    RetryRefused,
    next_checkpoint_after,
    own_records,
    receipt,
    retry_authorities,
)
from federator.lookup.journey import narrow
from federator.lookup.routing import Endpoint, Route


@pytest.mark.parametrize(("child", "practitioner"), [
    ("Shah", "Shah"), ("SHAH", "shah"), ("Sháh", "Shah"), ("Okafor-Shah", "Shah"),
    ("Shah", "Okafor-Shah"), ("O'Brien", "OBrien"), ("Núñez", "Nunez"),
    ("van der Berg", "Berg"), ("Smith Jones", "Jones"),
])
def test_family_names_that_match(child: str, practitioner: str) -> None:
    flag = own_family_name_flag(child, practitioner)
    assert flag is not None and flag["flag"] == "own_family_name"
    assert child not in flag["reason"] and practitioner not in flag["reason"]


@pytest.mark.parametrize(("child", "practitioner"), [
    ("Shahid", "Shah"), ("Smithson", "Smith"), ("de Souza", "de Silva"), ("", "Shah"),
    (None, "Shah"), ("Shah", ""), ("A", "A"),
])
def test_family_names_that_do_not(child: str | None, practitioner: str) -> None:
    assert own_family_name_flag(child, practitioner) is None


def test_name_parts_and_the_practitioners_family_name() -> None:
    assert name_parts("Núñez-O'Brien") == {"nunez", "obrien", "nunezobrien"}
    assert practitioner_family_name("Whitaker", "Tom Whitaker-Jones") == "Whitaker"
    assert practitioner_family_name("", "Priya  Shah") == "Shah"
    assert practitioner_family_name(None, "") == ""


def test_repeat_lookups_past_the_limit_but_not_retries() -> None:
    limits = FlagLimits(repeat_lookups=3, repeat_window=timedelta(hours=24))
    record: dict[str, Any] = {"basis": {"type": "consent"}, "scope": "targeted"}
    flags = {f["flag"]: f["reason"] for f in
             lookup_flags(record, History(actor_child_lookups=3), limits)}
    assert flags["repeat_lookups"] == ("4 lookups of this child by this practitioner within "
                                       "24 hours (limit 3).")
    assert "repeat_lookups" not in {f["flag"] for f in lookup_flags(
        record, History(actor_child_lookups=2), limits)}
    assert "repeat_lookups" not in {f["flag"] for f in lookup_flags(
        {**record, "follows": "01PREVIOUS"}, History(actor_child_lookups=9), limits)}
    assert FlagLimits.parse(per_hour=1, per_day=1, office_hours="08:00-18:00",
                            timezone="Europe/London", no_match_streak=1,
                            child_organisations=3, child_window_hours=1, repeat_lookups=5,
                            repeat_window_hours=48).repeat_window == timedelta(hours=48)


NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def first_lookup(**completed: Any) -> LookupRecords:
    requested = {"seq": 10, "event": "lookup.requested", "lookup_id": "L1",
                 "at": (NOW - timedelta(hours=1)).isoformat(), "actor_id": "me",
                 "purpose": "Assessment", "basis_type": "consent", "child_pseudonym": "p1",
                 "authorities": ["a", "b", "c", "d"], "hash": "h10"}
    done = {"seq": 12, "event": "lookup.completed", "lookup_id": "L1", "actor_id": "me",
            "complete": False, "hash": "h12",
            "outcomes": [{"id": "a", "outcome": "match", "professionals": 2},
                         {"id": "b", "outcome": "timeout"}, {"id": "c", "outcome": "error"},
                         {"id": "d", "outcome": "unavailable"}], **completed}
    return LookupRecords(requested, done)


def test_a_retry_asks_the_authorities_that_did_not_answer() -> None:
    assert retry_authorities(first_lookup(), pseudonym="p1", now=NOW,
                             window_s=86400) == {"b", "c", "d"}


@pytest.mark.parametrize(("change", "message"), [
    ({"pseudonym": "other"}, "not the child of the first lookup"),
    ({"now": NOW + timedelta(days=2)}, "older than 24 hours"),
])
def test_a_retry_is_refused_for_another_child_or_too_late(change: dict[str, Any],
                                                          message: str) -> None:
    args: dict[str, Any] = {"pseudonym": "p1", "now": NOW, "window_s": 86400, **change}
    with pytest.raises(RetryRefused, match=message):
        retry_authorities(first_lookup(), **args)


def test_a_retry_needs_a_finished_lookup_with_someone_to_ask() -> None:
    with pytest.raises(RetryRefused, match="not finished"):
        retry_authorities(LookupRecords(first_lookup().requested, None), pseudonym="p1",
                          now=NOW, window_s=86400)
    with pytest.raises(RetryRefused, match="nobody to ask again"):
        retry_authorities(first_lookup(outcomes=[{"id": "a", "outcome": "no_match"}]),
                          pseudonym="p1", now=NOW, window_s=86400)


def test_only_the_practitioner_who_made_it_sees_it() -> None:
    records = [first_lookup().requested, first_lookup().completed]
    assert own_records(records, "me").completed is not None
    with pytest.raises(NotYours):
        own_records(records, "someone-else")
    with pytest.raises(NotYours):
        own_records([], "me")


def test_the_receipt_holds_outcomes_and_no_counts_of_professionals() -> None:
    body = receipt(first_lookup(), names={"a": "Authority A"}, checkpoint=None,
                   head_seq=15, checkpoint_every=1000)
    assert [(a["id"], a["name"], a["outcome"]) for a in body["authorities"]] == [
        ("a", "Authority A", "match"), ("b", "b", "timeout"), ("c", "c", "error"),
        ("d", "d", "unavailable")]
    assert "professionals" not in str(body) and "p1" not in str(body.values())
    assert body["checkpoint"] == {"covered": False, "records_until_next": 985, "message": (
        "Not yet covered by a checkpoint; the next one is signed after 985 more records.")}
    signed = Checkpoint(log="f", tree_size=20, root_hash="r", head_hash="h", at="t",
                        kid="k", signed="jws")
    covered = receipt(first_lookup(), names={}, checkpoint=signed, head_seq=20,
                      checkpoint_every=10)
    assert covered["checkpoint"]["covered"] is True
    assert covered["checkpoint"]["signed"] == "jws"
    assert [r["seq"] for r in covered["records"]] == [10, 12]


def test_records_until_the_next_checkpoint() -> None:
    assert next_checkpoint_after(5, 7, 10) == 3
    assert next_checkpoint_after(10, 10, 10) == 10  # record 10 should have been signed
    assert next_checkpoint_after(1, 1, 1) == 1


def test_narrowing_a_route_never_widens_it() -> None:
    def endpoint(i: str, status: str = "active") -> Endpoint:
        return Endpoint(id=i, name=i, code="X", coverage=("national",),
                        protocol="federator-lookup/1", url="http://x", timeout_ms=1000,
                        contact="", status=status)
    plan = Route(ask=(endpoint("a"), endpoint("b")), unavailable=(endpoint("c", "suspended"),),
                 areas=frozenset({"E1"}))
    narrowed = narrow(plan, {"b", "c", "z"})
    assert [e.id for e in narrowed.ask] == ["b"] and [e.id for e in narrowed.unavailable] == ["c"]
    assert narrowed.areas == plan.areas


def test_the_results_page_offers_ask_again_and_possible_matches() -> None:
    from federator.web.lookups import ask_again

    result = {"authorities": [{"id": "a", "name": "A", "outcome": "match"},
                              {"id": "b", "name": "B", "outcome": "no_match"},
                              {"id": "c", "name": "C", "outcome": "timeout"}],
              "notices": [{"authority": "b", "text": "A possible match was found"},
                          {"authority": "a", "text": "Shielded: call the front door"},
                          {"authority": None, "text": "Only national services"}]}
    assert ask_again(result) == {"can_retry": True, "possible": [{"id": "b", "name": "B"}]}
    done = {"authorities": [{"id": "a", "name": "A", "outcome": "match"}], "notices": []}
    assert ask_again(done) == {"can_retry": False, "possible": []}


def test_the_wire_requester_may_carry_a_contact_and_old_ones_still_load() -> None:
    from adapters.protocol import WireRequester

    assert WireRequester().load({"id": "u", "email": "pat@example.nhs.uk"})["email"] == \
        "pat@example.nhs.uk"
    assert WireRequester().load({"id": "u", "name": "Pat"})["email"] is None
