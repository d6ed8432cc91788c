"""Conformance checks against real adapters on loopback: the kit passes them; an
adapter that accepts anything, or answers wrongly, or too slowly, fails them."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from flask import Flask, jsonify, request
from joserfc.jwk import ECKey

from adapters.conformance import TEST_NHS_NUMBER, CheckResult, run_checks
from adapters.kit.cli import main as kit_cli
from adapters.protocol import sign_request

pytestmark = pytest.mark.integration

AUTHORITY = "test-cs"  # as in this folder's conftest
ISSUER = "federator-test-broker"

ALL = ["health", "test_lookup", "within_time_limit", "unsigned", "bad_signature",
       "tampered_body", "expired", "wrong_audience", "replayed"]


def signer(key: ECKey, issuer: str = ISSUER) -> Callable[[bytes, str], str]:
    return lambda body, audience: sign_request(body, key, issuer=issuer, audience=audience)


def by_name(results: list[CheckResult]) -> dict[str, CheckResult]:
    return {r.name: r for r in results}


def test_the_kit_passes_every_check(kit_url: str, broker_key: ECKey) -> None:
    results = run_checks(kit_url, sign=signer(broker_key), audience=AUTHORITY,
                         key=broker_key, issuer=ISSUER)
    assert [r.name for r in results] == ALL
    failed = [r for r in results if not r.passed]
    assert failed == []
    assert "no_match" in by_name(results)["test_lookup"].detail


def test_expired_is_not_a_pass_without_the_key(kit_url: str, broker_key: ECKey) -> None:
    results = by_name(run_checks(kit_url, sign=signer(broker_key), audience=AUTHORITY))
    assert not results["expired"].passed
    assert "not run" in results["expired"].detail
    assert results["wrong_audience"].passed and results["replayed"].passed


def test_a_key_the_kit_does_not_trust_fails_the_test_lookup(kit_url: str) -> None:
    from adapters.protocol import generate_signing_key

    other = generate_signing_key("someone-else")
    results = by_name(run_checks(kit_url, sign=signer(other), audience=AUTHORITY,
                                 key=other, issuer=ISSUER))
    assert not results["test_lookup"].passed
    assert "HTTP 401" in results["test_lookup"].detail


def careless_adapter(delay_s: float = 0.0, answer: dict[str, Any] | None = None) -> Flask:
    """Answers every lookup, signed or not: the checks must catch it."""
    app = Flask("careless")

    @app.get("/health")
    def health() -> Any:
        return jsonify({"status": "ok", "protocol": "federator-lookup/1"})

    @app.post("/lookup")
    def lookup() -> Any:
        time.sleep(delay_s)
        data = request.get_json(force=True)
        return jsonify(answer or {"lookup_id": data["lookup_id"], "status": "no_match",
                                  "confidence": 0.0, "professionals": []})

    return app


@pytest.fixture
def careless(serve: Callable[[Any], Any]) -> Callable[..., str]:
    return lambda **kw: serve(careless_adapter(**kw)).url


def test_an_adapter_that_accepts_anything_fails_every_refusal(
        careless: Callable[..., str], broker_key: ECKey) -> None:
    results = by_name(run_checks(careless(), sign=signer(broker_key), audience=AUTHORITY,
                                 key=broker_key, issuer=ISSUER))
    assert results["health"].passed and results["test_lookup"].passed
    for name in ("unsigned", "bad_signature", "tampered_body", "expired", "wrong_audience",
                 "replayed"):
        assert not results[name].passed, name
        assert "HTTP 200, not 401" in results[name].detail


def test_a_wrong_answer_fails_the_test_lookup(careless: Callable[..., str],
                                              broker_key: ECKey) -> None:
    url = careless(answer={"lookup_id": "someone-elses", "status": "no_match"})
    results = by_name(run_checks(url, sign=signer(broker_key), audience=AUTHORITY))
    assert not results["test_lookup"].passed
    assert "another lookup" in results["test_lookup"].detail


def test_a_slow_adapter_fails_the_time_limit(careless: Callable[..., str],
                                             broker_key: ECKey) -> None:
    results = by_name(run_checks(careless(delay_s=0.6), sign=signer(broker_key),
                                 audience=AUTHORITY, timeout_s=0.3))
    assert not results["within_time_limit"].passed
    assert not results["test_lookup"].passed


def test_nothing_listening_fails_cleanly(broker_key: ECKey) -> None:
    from federator.demo.federation import _refusing_port

    sock = _refusing_port()
    try:
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        results = run_checks(url, sign=signer(broker_key), audience=AUTHORITY, timeout_s=1)
    finally:
        sock.close()
    assert results and not any(r.passed for r in results)


def test_the_cli_reports_each_check(kit_url: str, broker_key: ECKey, tmp_path: Path) -> None:
    key_file = tmp_path / "broker.jwk.json"
    key_file.write_text(json.dumps(broker_key.as_dict(private=True)))
    runner = CliRunner()
    ok = runner.invoke(kit_cli, ["check", kit_url, "--audience", AUTHORITY, "--key",
                                 str(key_file), "--issuer", ISSUER, "--json"])
    assert ok.exit_code == 0, ok.output
    assert [r["name"] for r in json.loads(ok.output) if r["passed"]] == ALL

    wrong = runner.invoke(kit_cli, ["check", kit_url, "--audience", "not-" + AUTHORITY,
                                    "--key", str(key_file), "--issuer", ISSUER])
    assert wrong.exit_code == 1
    assert "FAIL  test_lookup" in wrong.output

    public = tmp_path / "public.jwk.json"
    public.write_text(json.dumps(broker_key.as_dict(private=False)))
    no_private = runner.invoke(kit_cli, ["check", kit_url, "--audience", AUTHORITY,
                                         "--key", str(public)])
    assert no_private.exit_code != 0 and "no private part" in no_private.output

    not_test = runner.invoke(kit_cli, ["check", kit_url, "--audience", AUTHORITY, "--key",
                                       str(key_file), "--nhs-number", "9434765919"])
    assert not_test.exit_code != 0 and "--nhs-number" in not_test.output
    assert TEST_NHS_NUMBER.startswith("999")


def test_the_broker_cli_signs_with_the_brokers_own_key(
        kit_url: str, broker_key: ECKey, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from federator.cli import main as federator_cli

    (tmp_path / "signing-key.jwk.json").write_text(json.dumps(broker_key.as_dict(private=True)))
    env = {"FEDERATOR_ENV": "development", "FEDERATOR_INSTANCE_DIR": str(tmp_path),
           "FEDERATOR_BROKER_ID": ISSUER}
    result = CliRunner().invoke(federator_cli, ["adapter", "check", kit_url, "--audience",
                                                AUTHORITY, "--json"], env=env)
    assert result.exit_code == 0, result.output
    assert all(r["passed"] for r in json.loads(result.output))

    missing = CliRunner().invoke(
        federator_cli, ["adapter", "check", kit_url, "--audience", AUTHORITY],
        env={**env, "FEDERATOR_INSTANCE_DIR": str(tmp_path / "nowhere")})
    assert missing.exit_code != 0 and "does not exist" in missing.output
