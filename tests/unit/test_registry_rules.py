"""Registry rules, credentials, health summaries and the signing key ring."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet

from federator.registry.health import judge_probe, outcome_summary, percentile
from federator.registry.rules import (
    REASON_LIMIT,
    Refused,
    approval_problem,
    authorise,
    change_record,
    changed_fields,
    connection_target,
    coverage_widens,
    details_version,
    next_status,
    status_after_change,
    widening,
    widening_reason,
)
from federator.registry.secrets import CredentialCipher, CredentialsKeyError, parse_keys
from federator.registry.service import SeedError, parse_seed


def test_only_broker_admins_approve_and_authority_admins_only_their_own() -> None:
    authorise("approve", "broker-admin", None, "leeds-cs")
    with pytest.raises(Refused) as e:
        authorise("approve", "authority-admin", "leeds-cs", "leeds-cs")
    assert e.value.status == 403
    authorise("suspend", "authority-admin", "leeds-cs", "leeds-cs")
    with pytest.raises(Refused) as e:
        authorise("suspend", "authority-admin", "york-cs", "leeds-cs")
    assert e.value.status == 404


@pytest.mark.parametrize("action, before, after", [
    ("approve", "pending", "active"), ("reject", "pending", "rejected"),
    ("suspend", "active", "suspended"), ("resume", "suspended", "active")])
def test_transitions(action: str, before: str, after: str) -> None:
    assert next_status(action, before) == after
    with pytest.raises(Refused):
        next_status(action, after)


def after(status: str, current: dict[str, Any], update: dict[str, Any],
          credentials: bool = False) -> str:
    changed = changed_fields(current, update, credentials_given=credentials)
    return status_after_change(status, changed, widening(current, update, changed))


LEEDS = {"name": "Leeds Children's Services", "code": "E08000035", "coverage": ["E08000035"],
         "protocol": "federator-lookup/1", "url": "https://a.example", "timeout_ms": 3000,
         "contact": "x"}


def test_url_or_credentials_change_needs_approval_again() -> None:
    assert after("active", LEEDS, {"contact": "y"}) == "active"
    assert after("active", LEEDS, {"url": "https://b.example"}) == "pending"
    assert after("suspended", LEEDS, {}, credentials=True) == "pending"
    assert changed_fields(LEEDS, {"url": "https://a.example"}, credentials_given=False) == []


@pytest.mark.parametrize("update", [
    {"coverage": ["national"]}, {"coverage": ["E08000035", "E08000036"]},
    {"coverage": ["E08000036"]},  # swapped for another area: gains one
    {"name": "Bradford Children's Services"}, {"code": "E08000032"},
    {"protocol": "fhir-r4"}, {"url": "https://b.example"},
])
def test_every_change_that_widens_who_receives_identities_goes_pending(
        update: dict[str, Any]) -> None:
    for status in ("active", "suspended", "pending", "rejected"):
        assert after(status, LEEDS, update) == "pending", (status, update)
    assert widening(LEEDS, update, list(update)) == list(update)


@pytest.mark.parametrize("update", [
    {"coverage": ["E08000035"]}, {"timeout_ms": 9000}, {"contact": "Front door 0100"}])
def test_changes_that_do_not_widen_keep_the_status(update: dict[str, Any]) -> None:
    wider = {**LEEDS, "coverage": ["E08000035", "E08000036"]}
    for status in ("active", "suspended", "pending"):
        assert after(status, wider, update) == status, (status, update)
    assert after("rejected", wider, update) == "pending"  # a change resubmits it


def test_coverage_widens_only_when_it_reaches_someone_new() -> None:
    assert coverage_widens(["E1"], ["national"])
    assert coverage_widens(["E1"], ["E1", "E2"])
    assert coverage_widens(["E1", "E2"], ["E3"])
    assert not coverage_widens(["E1", "E2"], ["E2"])
    assert not coverage_widens(["national"], ["E1"])  # narrowing from national
    assert not coverage_widens(["E1", "E2"], ["E2", "E1"])


def test_the_change_record_has_old_and_new_values_but_never_credentials() -> None:
    update = {"coverage": ["national"], "name": "Bradford", "contact": "y",
              "credentials": {"client_secret": "hunter2"}}
    changed = changed_fields(LEEDS, update, credentials_given=True)
    record = change_record(LEEDS, update, changed)
    assert record == {"name": {"old": "Leeds Children's Services", "new": "Bradford"},
                      "coverage": {"old": ["E08000035"], "new": ["national"]},
                      "contact": {"old": "x", "new": "y"}, "credentials": "changed"}
    assert "hunter2" not in repr(record)


def test_the_widening_reason_says_what_widened_from_what() -> None:
    update = {"coverage": ["national"], "name": "Bradford", "credentials": {"a": "b"}}
    reason = widening_reason(LEEDS, update, ["name", "coverage", "credentials"])
    assert reason == ("Needs approval again: name changed from \"Leeds Children's Services\" "
                      "to \"Bradford\"; coverage widened to national (was E08000035); "
                      "credentials changed.")
    later = widening_reason({**LEEDS, "name": "Bradford"}, {"url": "https://b.example"},
                            ["url"], earlier=reason)
    assert later.startswith(reason[:-1] + '; then URL changed from "https://a.example"')
    gains = widening_reason(LEEDS, {"coverage": [f"E0{n:07}" for n in range(20)]},
                            ["coverage"])
    assert "coverage gains E00000000, E00000001" in gains and "and 10 more" in gains
    assert len(widening_reason(LEEDS, {"name": "x" * 5000}, ["name"])) == REASON_LIMIT
    assert "hunter2" not in widening_reason(LEEDS, {"credentials": {"s": "hunter2"}},
                                            ["credentials"])


def test_approval_needs_a_passing_check_of_the_endpoint_as_it_is() -> None:
    now = connection_target("federator-lookup/1", "https://a.example", None)
    assert approval_problem({"passed": True, "target": now}, now) is None
    assert "never been tested" in (approval_problem(None, now) or "")
    assert "last test failed" in (approval_problem({"passed": False, "target": now}, now)
                                  or "")
    for earlier in (connection_target("federator-lookup/1", "https://b.example", None),
                    connection_target("fhir-r4", "https://a.example", None),
                    connection_target("federator-lookup/1", "https://a.example", "gAAA"),
                    None):  # a check from before targets were recorded
        assert "changed since it last passed" in (
            approval_problem({"passed": True, "target": earlier}, now) or "")


def test_the_details_version_changes_with_every_detail_and_the_credentials() -> None:
    row = {**LEEDS, "coverage": '["E08000035"]', "credentials": None}
    seen = details_version(row)
    assert details_version(dict(row)) == seen
    for name, value in [("coverage", '["national"]'), ("name", "B"), ("contact", "z"),
                        ("timeout_ms", 100), ("credentials", "gAAA"),
                        ("policy", "{\"include_default\": false}")]:
        assert details_version({**row, name: value}) != seen, name


def test_credentials_round_trip_and_need_the_key() -> None:
    key = Fernet.generate_key().decode()
    cipher = CredentialCipher(parse_keys(key))
    token = cipher.encrypt({"client_secret": "hunter2"})
    assert "hunter2" not in token
    assert cipher.decrypt(token) == {"client_secret": "hunter2"}
    rotated = CredentialCipher(parse_keys(f"{Fernet.generate_key().decode()},{key}"))
    assert rotated.decrypt(token) == {"client_secret": "hunter2"}
    with pytest.raises(CredentialsKeyError):
        CredentialCipher(None).encrypt({"a": "b"})
    with pytest.raises(CredentialsKeyError):
        CredentialCipher(parse_keys(Fernet.generate_key().decode())).decrypt(token)
    with pytest.raises(ValueError, match="FEDERATOR_CREDENTIALS_KEY"):
        parse_keys("not-a-key")


def test_outcome_summary_counts_and_percentiles() -> None:
    records = [{"outcomes": [{"id": "a", "outcome": "match", "latency_ms": ms},
                             {"id": "b", "outcome": "timeout", "latency_ms": 5000}]}
               for ms in range(10, 110, 10)]
    records.append({"outcomes": [{"id": "a", "outcome": "error", "latency_ms": 1}]})
    summary = outcome_summary(records, "a")
    assert summary["lookups"] == 11 and summary["counts"]["error"] == 1
    assert summary["latency_ms"] == {"p50": 50, "p95": 100, "p99": 100}
    assert summary["failure_rate"] == round(1 / 11, 3)
    assert percentile([], 50) is None


def test_probe_judgement() -> None:
    ok = b'{"status": "ok", "protocol": "federator-lookup/1"}'
    assert judge_probe("federator-lookup/1", 200, ok)[0]
    assert not judge_probe("federator-lookup/1", 503, ok)[0]
    assert not judge_probe("federator-lookup/1", 200, b'{"status": "ok"}')[0]
    assert judge_probe("fhir-r4", 200, b'{"resourceType": "CapabilityStatement"}')[0]
    assert not judge_probe("fhir-r4", 200, b"<html>")[0]


def test_the_example_seed_parses_with_its_credentials() -> None:
    path = Path(__file__).resolve().parents[2] / "config" / "registry.example.toml"
    entries = parse_seed(path.read_bytes())
    assert {e["id"] for e in entries} == {"leeds-cs", "kirklees-health"}
    assert entries[1]["credentials"]["client_id"] == "federator"
    with pytest.raises(SeedError, match="credentials"):
        parse_seed(b'[[endpoint]]\nid="a"\nname="A"\ncode="RXX"\ncoverage=["national"]\n'
                   b'protocol="fhir-r4"\nurl="https://a.example"\ncredentials={x=1}\n')


def test_a_line_not_checked_neither_passes_nor_fails_a_test() -> None:
    from federator.registry.conformance import checks_passed

    ran = {"name": "metadata", "passed": True, "detail": "ok"}
    note = {"name": "conformance_suite", "passed": None, "detail": "not checked"}
    assert checks_passed([ran, note])
    assert not checks_passed([{**ran, "passed": False}, note])
    assert not checks_passed([note])  # nothing ran: not a pass


def test_only_a_broker_admin_lifts_a_broker_admins_suspension() -> None:
    from federator.registry.rules import resume_problem

    assert resume_problem("authority-admin", "broker-admin")
    assert resume_problem("broker-admin", "broker-admin") is None
    assert resume_problem("authority-admin", "authority-admin") is None  # its own
    assert resume_problem("authority-admin", None) is None  # reviews from before 0008
