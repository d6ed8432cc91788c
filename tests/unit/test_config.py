"""Settings.from_env: production refuses unsafe settings, development fills secrets."""

from __future__ import annotations

from pathlib import Path

import pytest

from federator.config import ConfigError, Settings

SECRET = "s" * 32
AUDIT = "a" * 32


def production(**over):
    env = {"FEDERATOR_ENV": "production", "FEDERATOR_SECRET_KEY": SECRET,
           "FEDERATOR_AUDIT_KEY": AUDIT, "FEDERATOR_OIDC_ISSUER": "https://idp.example/",
           "FEDERATOR_SIGNING_KEY_FILE": "/etc/federator/signing.jwk"}
    env.update(over)
    return {k: v for k, v in env.items() if v is not None}


def refused(env) -> str:
    with pytest.raises(ConfigError) as info:
        Settings.from_env(env)
    return str(info.value)


# -- production ------------------------------------------------------------------------


def test_complete_production_settings_load():
    settings = Settings.from_env(production())
    assert settings.env == "production" and not settings.development
    assert settings.secret_key == SECRET and settings.audit_key == AUDIT
    assert settings.oidc_issuer == "https://idp.example"
    assert settings.signing_key_file == Path("/etc/federator/signing.jwk")
    assert settings.generated == ()


def test_production_is_the_default_environment():
    env = production()
    del env["FEDERATOR_ENV"]
    assert Settings.from_env(env).env == "production"
    assert "FEDERATOR_SECRET_KEY" in refused({})


@pytest.mark.parametrize("name", ["FEDERATOR_SECRET_KEY", "FEDERATOR_AUDIT_KEY"])
@pytest.mark.parametrize("value", [None, "", "   ", "x" * 31, "change-me"])
def test_production_refuses_a_missing_or_short_secret_and_names_it(name, value):
    message = refused(production(**{name: value}))
    assert name in message
    other = ({"FEDERATOR_SECRET_KEY", "FEDERATOR_AUDIT_KEY"} - {name}).pop()
    assert other not in message


def test_production_accepts_a_secret_of_exactly_32_characters():
    assert Settings.from_env(production(FEDERATOR_SECRET_KEY="x" * 32)).secret_key == "x" * 32


def test_production_never_generates_secrets():
    message = refused(production(FEDERATOR_SECRET_KEY=None, FEDERATOR_AUDIT_KEY=None))
    assert "FEDERATOR_SECRET_KEY" in message and "FEDERATOR_AUDIT_KEY" in message


@pytest.mark.parametrize("value", [None, "", "  "])
def test_production_refuses_a_missing_oidc_issuer(value):
    assert "FEDERATOR_OIDC_ISSUER" in refused(production(FEDERATOR_OIDC_ISSUER=value))


def test_production_refuses_a_plain_http_oidc_issuer():
    message = refused(production(FEDERATOR_OIDC_ISSUER="http://idp.example"))
    assert "FEDERATOR_OIDC_ISSUER" in message and "https" in message


@pytest.mark.parametrize("value", [None, "", " "])
def test_production_refuses_a_missing_signing_key_file(value):
    assert "FEDERATOR_SIGNING_KEY_FILE" in refused(production(FEDERATOR_SIGNING_KEY_FILE=value))


def test_production_lists_every_problem_at_once():
    message = refused({"FEDERATOR_ENV": "production"})
    for name in ("FEDERATOR_SECRET_KEY", "FEDERATOR_AUDIT_KEY", "FEDERATOR_OIDC_ISSUER",
                 "FEDERATOR_SIGNING_KEY_FILE"):
        assert name in message


def test_secrets_do_not_appear_in_error_messages():
    message = refused(production(FEDERATOR_SECRET_KEY="tooshort-secret-value",
                                 FEDERATOR_OIDC_ISSUER=None))
    assert "tooshort-secret-value" not in message


# -- development -----------------------------------------------------------------------


def test_development_generates_missing_secrets_and_says_so():
    settings = Settings.from_env({"FEDERATOR_ENV": "development"})
    assert settings.development
    assert len(settings.secret_key) >= 32 and len(settings.audit_key) >= 32
    assert settings.secret_key != settings.audit_key
    assert set(settings.generated) == {"FEDERATOR_SECRET_KEY", "FEDERATOR_AUDIT_KEY"}


def test_development_secrets_differ_per_process_start():
    one = Settings.from_env({"FEDERATOR_ENV": "development"})
    two = Settings.from_env({"FEDERATOR_ENV": "development"})
    assert one.secret_key != two.secret_key
    assert one.audit_key != two.audit_key


def test_development_keeps_given_secrets():
    settings = Settings.from_env({"FEDERATOR_ENV": "development",
                                  "FEDERATOR_SECRET_KEY": SECRET})
    assert settings.secret_key == SECRET
    assert settings.generated == ("FEDERATOR_AUDIT_KEY",)


def test_development_replaces_a_short_secret():
    settings = Settings.from_env({"FEDERATOR_ENV": "development",
                                  "FEDERATOR_AUDIT_KEY": "short"})
    assert settings.audit_key != "short" and len(settings.audit_key) >= 32
    assert "FEDERATOR_AUDIT_KEY" in settings.generated


def test_development_needs_no_issuer_or_signing_key():
    settings = Settings.from_env({"FEDERATOR_ENV": "development"})
    assert settings.oidc_issuer is None and settings.signing_key_file is None


@pytest.mark.parametrize("mode", ["staging", "Production", "dev", "test"])
def test_an_unknown_environment_is_refused_by_name(mode):
    assert "FEDERATOR_ENV" in refused({"FEDERATOR_ENV": mode})


# -- other settings --------------------------------------------------------------------


def test_defaults():
    settings = Settings.from_env(production())
    assert settings.deadline_default_ms == 5000
    assert settings.deadline_max_ms == 15000
    assert settings.consent_max_age_days == 365
    assert settings.fanout_workers == 32
    assert settings.max_answer_bytes == 1024 * 1024
    assert settings.broker_id == "federator"
    assert settings.redis_url is None and settings.database_url is None
    assert settings.allowed_networks == ()
    assert settings.oidc_audience == "federator"


def test_values_are_read_and_trimmed():
    settings = Settings.from_env(production(
        FEDERATOR_DATABASE_URL=" postgresql+psycopg://db/f ",
        FEDERATOR_REDIS_URL="redis://r:6379/0",
        FEDERATOR_PUBLIC_URL="https://broker.example/",
        FEDERATOR_ALLOWED_NETWORKS=" 10.0.0.0/8, ,192.168.1.0/24 ",
        FEDERATOR_REGISTRY_SEED="/srv/seed.toml",
        FEDERATOR_OIDC_CLIENT_ID="broker",
        FEDERATOR_CONSENT_MAX_AGE_DAYS=" 90 ",
    ))
    assert settings.database_url == "postgresql+psycopg://db/f"
    assert settings.sqlalchemy_url == "postgresql+psycopg://db/f"
    assert settings.redis_url == "redis://r:6379/0"
    assert settings.public_url == "https://broker.example"
    assert settings.allowed_networks == ("10.0.0.0/8", "192.168.1.0/24")
    assert settings.registry_seed == Path("/srv/seed.toml")
    assert settings.oidc_client_id == "broker"
    assert settings.oidc_audience == "broker"
    assert settings.consent_max_age_days == 90


def test_default_database_is_sqlite_in_the_instance_folder(tmp_path):
    settings = Settings.from_env(production(FEDERATOR_INSTANCE_DIR=str(tmp_path)))
    assert settings.sqlalchemy_url == f"sqlite:///{(tmp_path / 'federator.sqlite').resolve()}"


@pytest.mark.parametrize(("name", "value"), [
    ("FEDERATOR_DEADLINE_DEFAULT_MS", "soon"),
    ("FEDERATOR_DEADLINE_MAX_MS", "1.5"),
    ("FEDERATOR_CONSENT_MAX_AGE_DAYS", "a year"),
    ("FEDERATOR_FANOUT_WORKERS", "many"),
    ("FEDERATOR_MAX_ANSWER_BYTES", "1MB"),
])
def test_a_non_number_is_refused_by_name(name, value):
    message = refused(production(**{name: value}))
    assert name in message and "whole number" in message


@pytest.mark.parametrize(("name", "minimum"), [
    ("FEDERATOR_DEADLINE_DEFAULT_MS", 100),
    ("FEDERATOR_DEADLINE_MAX_MS", 100),
    ("FEDERATOR_CONSENT_MAX_AGE_DAYS", 1),
    ("FEDERATOR_FANOUT_WORKERS", 1),
    ("FEDERATOR_MAX_ANSWER_BYTES", 1024),
])
def test_numbers_below_their_minimum_are_refused_by_name(name, minimum):
    message = refused(production(**{name: str(minimum - 1)}))
    assert name in message and str(minimum) in message
    env = production(**{name: str(minimum)})
    if name == "FEDERATOR_DEADLINE_MAX_MS":
        env["FEDERATOR_DEADLINE_DEFAULT_MS"] = "100"
    Settings.from_env(env)


def test_default_deadline_above_the_maximum_is_refused():
    message = refused(production(FEDERATOR_DEADLINE_DEFAULT_MS="6000",
                                 FEDERATOR_DEADLINE_MAX_MS="5000"))
    assert "FEDERATOR_DEADLINE_DEFAULT_MS" in message
    assert "FEDERATOR_DEADLINE_MAX_MS" in message


def test_from_env_reads_the_process_environment(monkeypatch):
    for name in list(__import__("os").environ):
        if name.startswith("FEDERATOR_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("FEDERATOR_ENV", "development")
    monkeypatch.setenv("FEDERATOR_BROKER_ID", "broker-7")
    assert Settings.from_env().broker_id == "broker-7"
