"""Registry rules, credentials, health summaries and the signing key ring."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from federator.registry.health import judge_probe, outcome_summary, percentile
from federator.registry.rules import (
    Refused,
    authorise,
    changed_fields,
    next_status,
    status_after_change,
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


def test_url_or_credentials_change_needs_approval_again() -> None:
    current = {"url": "https://a.example", "contact": "x"}
    assert status_after_change("active", changed_fields(
        current, {"contact": "y"}, credentials_given=False)) == "active"
    assert status_after_change("active", changed_fields(
        current, {"url": "https://b.example"}, credentials_given=False)) == "pending"
    assert status_after_change("suspended", changed_fields(
        current, {}, credentials_given=True)) == "pending"
    assert changed_fields(current, {"url": "https://a.example"}, credentials_given=False) == []


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
