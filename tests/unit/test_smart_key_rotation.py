"""SMART key rotation with overlap (adapters/smart_auth.py): a new key is
published at once next to the key in use, which keeps signing until the overlap
ends or the old key is retired; then the new key signs and is published alone."""

from __future__ import annotations

import json

import pytest

from adapters.smart_auth import (
    MAX_SWITCH_S,
    SmartKeyError,
    credentials_jwks,
    generate_private_key,
    in_force,
    load_private_key,
    retire_old_key,
    signing_key,
    stage_new_key,
    staged_key_problems,
    switch_time,
)

NOW = 1_800_000_000.0
OLD = generate_private_key()
CREDS = {"auth": "smart_backend", "client_id": "federator", "private_key": OLD, "kid": "mine",
         "client_secret": "left-over"}


def kids(jwks: dict | None) -> list[str]:
    assert jwks is not None
    return [k["kid"] for k in jwks["keys"]]


def thumb(private: str) -> str:
    return str(json.loads(private)["kid"])


def test_a_staged_key_is_published_but_the_old_key_signs_until_the_overlap_ends() -> None:
    staged = stage_new_key(CREDS, alg="ES384", overlap_s=3600, now=NOW)
    new = staged["next_private_key"]
    assert staged["private_key"] == OLD and staged["next_from"] == str(int(NOW + 3600))
    assert "client_secret" not in staged and staged["kid"] == "mine"
    assert kids(credentials_jwks(staged, NOW)) == [thumb(new), "mine"]
    assert in_force(staged, NOW + 3599)["private_key"] == OLD
    after = in_force(staged, NOW + 3600)
    assert after["private_key"] == new
    assert not {"next_private_key", "next_from", "kid"} & set(after)
    assert kids(credentials_jwks(staged, NOW + 3600)) == [thumb(new)]
    for key in credentials_jwks(staged, NOW)["keys"]:  # type: ignore[index]
        assert "d" not in key


def test_retiring_ends_the_overlap_now_and_needs_a_staged_key() -> None:
    staged = stage_new_key(CREDS, alg="RS384", overlap_s=3600, now=NOW)
    retired = retire_old_key(staged)
    assert retired is not None and retired["private_key"] == staged["next_private_key"]
    assert load_private_key(retired["private_key"]).key_type == "RSA"
    assert retire_old_key(retired) is None and retire_old_key(CREDS) is None


def test_no_stored_key_or_no_overlap_replaces_at_once() -> None:
    fresh = stage_new_key({"client_id": "federator"}, alg="ES384", overlap_s=3600, now=NOW)
    assert fresh["private_key"] and "next_private_key" not in fresh
    at_once = stage_new_key(CREDS, alg="ES384", overlap_s=0, now=NOW)
    assert at_once["private_key"] != OLD and "next_private_key" not in at_once
    assert "kid" not in at_once  # the configured kid named the old key


def test_staging_again_in_the_overlap_replaces_the_staged_key_not_the_one_in_use() -> None:
    once = stage_new_key(CREDS, alg="ES384", overlap_s=3600, now=NOW)
    twice = stage_new_key(once, alg="ES384", overlap_s=3600, now=NOW + 10)
    assert twice["private_key"] == OLD
    assert twice["next_private_key"] != once["next_private_key"]
    # once the overlap is over, staging starts from the key then in force
    later = stage_new_key(once, alg="ES384", overlap_s=3600, now=NOW + 7200)
    assert later["private_key"] == once["next_private_key"]


def test_an_unreadable_switch_time_means_the_newer_key() -> None:
    staged = {**stage_new_key(CREDS, alg="ES384", overlap_s=3600, now=NOW), "next_from": "soon"}
    assert in_force(staged, NOW)["private_key"] == staged["next_private_key"]


@pytest.mark.parametrize("text", ["nan", "inf", "-inf", "1e10"])
def test_a_switch_time_that_is_no_number_of_seconds_means_the_newer_key(text: str) -> None:
    """``float()`` would read these, and ``nan``/``inf`` would keep the old key for ever."""
    staged = {**stage_new_key(CREDS, alg="ES384", overlap_s=3600, now=NOW), "next_from": text}
    assert in_force(staged, NOW)["private_key"] == staged["next_private_key"]


@pytest.mark.parametrize(("value", "seconds"), [
    ("1767225600", 1767225600), (" 0 ", 0), (str(MAX_SWITCH_S), MAX_SWITCH_S),
    (str(MAX_SWITCH_S + 1), None), ("-5", None), ("1.5e9", None), ("nan", None),
    ("\u0661\u0662", None), ("", None), (None, None), (1767225600, None),
])
def test_switch_time_reads_whole_seconds_only(value: object, seconds: int | None) -> None:
    assert switch_time(value) == seconds


def test_signing_key_proves_the_key_signs() -> None:
    assert signing_key(OLD).is_private
    with pytest.raises(SmartKeyError, match="not a readable"):
        signing_key('{"kty": "EC", "crv": "P-384"}')


def test_a_staged_key_made_by_rotation_is_valid_input() -> None:
    assert staged_key_problems(stage_new_key(CREDS, alg="RS384", overlap_s=60, now=NOW)) == {}
    assert staged_key_problems(CREDS) == {}


def test_a_staged_key_given_as_input_must_sign_and_name_its_time() -> None:
    bad_key = json.dumps({**json.loads(OLD), "d": "AAAA"})
    problems = staged_key_problems({**CREDS, "next_private_key": bad_key, "next_from": "soon"})
    assert problems == {
        "next_private_key": ["next_private_key is not a readable PEM or JWK private key"],
        "next_from": ["next_from must be a time in whole seconds since 1970-01-01 UTC "
                      "(for example 1767225600)"]}
    assert bad_key not in json.dumps(problems) and "AAAA" not in json.dumps(problems)


def test_a_staged_key_needs_both_fields_and_smart() -> None:
    assert set(staged_key_problems({**CREDS, "next_from": "1767225600"})) == {
        "next_private_key"}
    assert set(staged_key_problems({**CREDS, "next_private_key": OLD})) == {"next_from"}
    secret = {"client_id": "x", "client_secret": "y", "next_private_key": OLD,
              "next_from": "1767225600"}
    assert staged_key_problems(secret) == {"next_private_key": [
        "a next key is only for SMART Backend Services (auth smart_backend, with a "
        "private_key)"]}
