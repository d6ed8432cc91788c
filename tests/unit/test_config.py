"""Settings: production refuses unsafe settings, development fills secrets; every
setting declared once, with its default, minimum and description, and documented."""

from __future__ import annotations

import dataclasses
import secrets
from pathlib import Path

import pytest
from click.testing import CliRunner

from federator.cli import main
from federator.config import ConfigError, Settings, declarations, low_entropy
from federator.settings_doc import DOC, TEST_VARIABLES, render

SECRET = "k7Qp2vXz9RbT4mWn8cYh3LsD6fJg1aEu"  # 32 random-looking characters
AUDIT = "Zr5NqW2xE8tUy4Ip7oAs1Df6Gh3Jk9Lc"


def production(**over):
    env = {"FEDERATOR_ENV": "production", "FEDERATOR_SECRET_KEY": SECRET,
           "FEDERATOR_AUDIT_KEY": AUDIT, "FEDERATOR_OIDC_ISSUER": "https://idp.example/",
           "FEDERATOR_SIGNING_KEY_FILE": "/etc/federator/signing.jwk",
           "FEDERATOR_PUBLIC_URL": "https://federator.example"}
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
    value = secrets.token_hex(16)
    assert Settings.from_env(production(FEDERATOR_SECRET_KEY=value)).secret_key == value


@pytest.mark.parametrize("name", ["FEDERATOR_SECRET_KEY", "FEDERATOR_AUDIT_KEY"])
@pytest.mark.parametrize("value", ["a" * 32, "x" * 40, "abcd" * 8, "ab" * 30,
                                   "passwordpasswordpasswordpassword"])
def test_production_refuses_a_predictable_secret_and_names_it(name, value):
    message = refused(production(**{name: value}))
    assert f"{name} is too predictable" in message
    assert value not in message


def test_production_refuses_the_same_secret_and_audit_key():
    message = refused(production(FEDERATOR_AUDIT_KEY=SECRET))
    assert "FEDERATOR_SECRET_KEY and FEDERATOR_AUDIT_KEY must differ" in message


@pytest.mark.parametrize("url", ["http://federator.example", "http://127.0.0.1:5000"])
def test_production_refuses_a_plain_http_public_url(url):
    assert "FEDERATOR_PUBLIC_URL must be https" in refused(production(FEDERATOR_PUBLIC_URL=url))
    env = production()
    del env["FEDERATOR_PUBLIC_URL"]  # the default is the development address
    assert "FEDERATOR_PUBLIC_URL must be https" in refused(env)


def test_random_secrets_are_never_called_predictable():
    # 32 hex characters is the shortest random secret an operator is likely to use
    assert not any(low_entropy(secrets.token_hex(16)) for _ in range(5000))
    assert not any(low_entropy(secrets.token_urlsafe(32)) for _ in range(1000))
    assert low_entropy("") and low_entropy("a" * 32)


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


# -- the declarations ------------------------------------------------------------------

#: Every setting's default as it was when the settings were first declared in one
#: place: a changed default must be changed here too, on purpose.
DEFAULTS = {
    "FEDERATOR_ENV": "production",
    "FEDERATOR_INSTANCE_DIR": Path("instance"),
    "FEDERATOR_DATABASE_URL": None,
    "FEDERATOR_REDIS_URL": None,
    "FEDERATOR_REDIS_PREFIX": "federator:",
    "FEDERATOR_SECRET_KEY": "",
    "FEDERATOR_AUDIT_KEY": "",
    "FEDERATOR_BROKER_ID": "federator",
    "FEDERATOR_PUBLIC_URL": "http://127.0.0.1:5000",
    "FEDERATOR_SERVICE_NAME": "Find who is working with a child",
    "FEDERATOR_SERVICE_OWNER": "",
    "FEDERATOR_SERVICE_BRAND": "own",
    "FEDERATOR_SIGNING_KEY_FILE": None,
    "FEDERATOR_OIDC_ISSUER": None,
    "FEDERATOR_OIDC_CLIENT_ID": "federator",
    "FEDERATOR_OIDC_CLIENT_SECRET": None,
    "FEDERATOR_OIDC_AUDIENCE": "federator",
    "FEDERATOR_ROLES_CLAIM": "roles",
    "FEDERATOR_REGISTRY_SEED": None,
    "FEDERATOR_ALLOWED_NETWORKS": (),
    "FEDERATOR_CA_FILE": None,
    "FEDERATOR_CREDENTIALS_KEY": "",
    "FEDERATOR_KEY_OVERLAP_S": 604800,
    "FEDERATOR_POSTCODE_TABLE": None,
    "FEDERATOR_DEADLINE_DEFAULT_MS": 5000,
    "FEDERATOR_DEADLINE_MAX_MS": 15000,
    "FEDERATOR_CONSENT_MAX_AGE_DAYS": 365,
    "FEDERATOR_FANOUT_WORKERS": 32,
    "FEDERATOR_MAX_ANSWER_BYTES": 1048576,
    "FEDERATOR_MAX_PROFESSIONALS": 200,
    "FEDERATOR_GOVUK_FRONTEND_DIR": None,
    "FEDERATOR_BREAKER_FAILURES": 5,
    "FEDERATOR_BREAKER_WINDOW_S": 60,
    "FEDERATOR_BREAKER_COOLDOWN_S": 30,
    "FEDERATOR_OIDC_SCOPES": "openid profile email roles",
    "FEDERATOR_ROLE_MAP": (),
    "FEDERATOR_ROLE_SELECTOR": "",
    "FEDERATOR_ORGANISATION_CLAIM": "organisation",
    "FEDERATOR_AUTHORITY_CLAIM": "authority",
    "FEDERATOR_SESSION_IDLE_MINUTES": 15,
    "FEDERATOR_SESSION_MAX_HOURS": 10,
    "FEDERATOR_SESSION_REFRESH_MINUTES": 5,
    "FEDERATOR_REQUIRED_ACR": (),
    "FEDERATOR_OIDC_TOKEN_CLIENTS": (),
    "FEDERATOR_LOOKUPS_PER_MINUTE": 10,
    "FEDERATOR_LOOKUPS_PER_DAY": 200,
    "FEDERATOR_REFUSED_LOOKUPS_PER_MINUTE": 30,
    "FEDERATOR_REFUSED_LOOKUPS_PER_DAY": 300,
    "FEDERATOR_ORGANISATION_LOOKUPS_PER_MINUTE": 300,
    "FEDERATOR_ORGANISATION_LOOKUPS_PER_DAY": 10000,
    "FEDERATOR_PROOFS_PER_MINUTE": 120,
    "FEDERATOR_METRICS_TOKEN": "",
    "FEDERATOR_AUDIT_CHECKPOINT_EVERY": 1000,
    "FEDERATOR_AUDIT_CHECKPOINT_INTERVAL_S": 60,
    "FEDERATOR_AUDIT_RETENTION_DAYS": None,  # never pruned until a period is decided
    "FEDERATOR_AUDIT_PER_HOUR": 20,
    "FEDERATOR_AUDIT_PER_DAY": 80,
    "FEDERATOR_AUDIT_OFFICE_HOURS": "08:00-18:00",
    "FEDERATOR_AUDIT_TIMEZONE": "Europe/London",
    "FEDERATOR_AUDIT_NO_MATCH_STREAK": 10,
    "FEDERATOR_AUDIT_CHILD_ORGANISATIONS": 3,
    "FEDERATOR_AUDIT_CHILD_WINDOW_HOURS": 72,
    "FEDERATOR_AUDIT_REPEAT_LOOKUPS": 3,
    "FEDERATOR_AUDIT_REPEAT_WINDOW_HOURS": 24,
    "FEDERATOR_AUDIT_SUSTAINED_HOURS": 3,
    "FEDERATOR_AUDIT_SUSTAINED_PER_HOUR": 8,
    "FEDERATOR_ALERT_WEBHOOK": None,
    "FEDERATOR_ALERT_SYSLOG": None,
    "FEDERATOR_ALERT_EMAIL": (),
    "FEDERATOR_ALERT_SMTP_URL": None,
    "FEDERATOR_ALERT_EMAIL_FROM": "federator@localhost",
    "FEDERATOR_OTEL_EXPORTER_OTLP_ENDPOINT": None,
    "FEDERATOR_RETRY_WINDOW_S": 86400,
}
#: Whole numbers whose minimum is not 1.
MINIMUMS = {"FEDERATOR_KEY_OVERLAP_S": 0, "FEDERATOR_DEADLINE_DEFAULT_MS": 100,
            "FEDERATOR_DEADLINE_MAX_MS": 100, "FEDERATOR_MAX_ANSWER_BYTES": 1024,
            "FEDERATOR_AUDIT_CHILD_ORGANISATIONS": 2, "FEDERATOR_AUDIT_CHECKPOINT_INTERVAL_S": 0,
            "FEDERATOR_AUDIT_SUSTAINED_HOURS": 0, "FEDERATOR_AUDIT_RETENTION_DAYS": 30,
            "FEDERATOR_PROOFS_PER_MINUTE": 0}

DECLARED = {d.variable: d for d in declarations()}
WHOLE_NUMBERS = [d for d in declarations() if d.kind is int]
TEXTS = [d for d in declarations() if d.kind is str and not d.choices]


def test_every_setting_is_declared_once_with_a_one_line_description():
    names = [f.name for f in dataclasses.fields(Settings) if f.name != "generated"]
    assert [d.name for d in declarations()] == names
    assert len(DECLARED) == len(names)
    for d in declarations():
        assert d.variable == f"FEDERATOR_{d.name.upper()}"
        assert d.description.strip() and "\n" not in d.description, d.variable
        assert d.description.endswith("."), d.variable


def test_the_defaults_are_the_reference_defaults():
    assert {d.variable: d.default for d in declarations()} == DEFAULTS
    built = Settings()
    assert {f"FEDERATOR_{name.upper()}": getattr(built, name) for name in
            (d.name for d in declarations())} == DEFAULTS


def test_an_empty_environment_gives_the_defaults():
    settings = Settings.from_env({"FEDERATOR_ENV": "development"})
    for d in declarations():
        if d.name not in ("env", "secret_key", "audit_key"):
            assert getattr(settings, d.name) == DEFAULTS[d.variable], d.variable


def test_whole_numbers_have_the_reference_minimums():
    assert {d.variable: d.minimum for d in WHOLE_NUMBERS} == {
        d.variable: MINIMUMS.get(d.variable, 1) for d in WHOLE_NUMBERS}
    assert all(d.minimum is None for d in declarations() if d.kind is not int)


def test_the_settings_documentation_is_what_the_declarations_make():
    assert DOC.read_text(encoding="utf-8") == render(), (
        "docs/settings.md is stale: federator settings docs --output docs/settings.md")


def test_the_documentation_lists_every_variable_with_its_default_and_minimum():
    rows = {line.split("|")[1].strip(" `"): line for line in render().splitlines()
            if line.startswith("| `FEDERATOR_")}
    assert set(rows) - set(TEST_VARIABLES) == set(DEFAULTS)
    for d in WHOLE_NUMBERS:
        default = f"`{d.default}`" if d.default is not None else d.unset  # optional: says so
        assert f"at least {d.minimum} | {default} |" in rows[d.variable]
    assert "`FEDERATOR_OIDC_CLIENT_ID`, else `federator`" in rows["FEDERATOR_OIDC_AUDIENCE"]


def test_tracing_reads_the_standard_otlp_variable_unless_its_own_is_set():
    dev = {"FEDERATOR_ENV": "development"}
    assert Settings.from_env(dev).otel_exporter_otlp_endpoint is None
    standard = {**dev, "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318/"}
    assert Settings.from_env(standard).otel_exporter_otlp_endpoint == "http://collector:4318"
    own = {**standard, "FEDERATOR_OTEL_EXPORTER_OTLP_ENDPOINT": "http://other:4318"}
    assert Settings.from_env(own).otel_exporter_otlp_endpoint == "http://other:4318"
    row = next(line for line in render().splitlines()
               if line.startswith("| `FEDERATOR_OTEL_EXPORTER_OTLP_ENDPOINT`"))
    assert "`OTEL_EXPORTER_OTLP_ENDPOINT`, else no tracing" in row


def test_the_command_writes_the_documentation(tmp_path):
    out = tmp_path / "settings.md"
    result = CliRunner().invoke(main, ["settings", "docs", "--output", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_text(encoding="utf-8") == render()
    printed = CliRunner().invoke(main, ["settings", "docs"])
    assert printed.exit_code == 0 and printed.output == render()


@pytest.mark.parametrize("d", WHOLE_NUMBERS, ids=lambda d: d.variable)
@pytest.mark.parametrize("value", ["soon", "1.5", "1MB", "0x10"])
def test_a_whole_number_setting_refuses_a_non_number_by_name(d, value):
    message = refused(production(**{d.variable: value}))
    assert d.variable in message and "whole number" in message


@pytest.mark.parametrize("d", WHOLE_NUMBERS, ids=lambda d: d.variable)
def test_a_whole_number_setting_refuses_below_its_minimum_by_name(d):
    message = refused(production(**{d.variable: str(d.minimum - 1)}))
    assert d.variable in message and f"at least {d.minimum}" in message


@pytest.mark.parametrize("d", WHOLE_NUMBERS, ids=lambda d: d.variable)
def test_a_whole_number_setting_reads_its_minimum_and_a_trimmed_value(d):
    low = {"FEDERATOR_DEADLINE_DEFAULT_MS": "100"}  # at most FEDERATOR_DEADLINE_MAX_MS
    at_minimum = Settings.from_env(production(**{**low, d.variable: str(d.minimum)}))
    assert getattr(at_minimum, d.name) == d.minimum
    value = (d.default if d.default is not None else d.minimum) + 7
    read = Settings.from_env(production(**{d.variable: f" {value} "}))
    assert getattr(read, d.name) == value


@pytest.mark.parametrize("d", TEXTS, ids=lambda d: d.variable)
def test_a_text_setting_is_read_trimmed_and_blank_is_unset(d):
    given = {"oidc_issuer": "https://x.example/a", "public_url": "https://x.example/a",
             "secret_key": "Hq8" + SECRET[3:] + "Mz0x", "audit_key": "Wb4" + AUDIT[3:] + "Tp9y",
             "role_selector": "selected_roleid=person_roleid",
             }.get(d.name, "x" * 40)
    assert getattr(Settings.from_env(production(**{d.variable: f"  {given} "})), d.name) == given
    # required in production (the default public URL is http)
    if d.name not in ("secret_key", "audit_key", "oidc_issuer", "public_url"):
        assert getattr(Settings.from_env(production(**{d.variable: "   "})), d.name) == d.default


@pytest.mark.parametrize("d", [d for d in declarations() if d.kind is Path],
                         ids=lambda d: d.variable)
def test_a_path_setting_is_a_path(d):
    settings = Settings.from_env(production(**{d.variable: " /srv/federator/x "}))
    assert getattr(settings, d.name) == Path("/srv/federator/x")
    assert isinstance(getattr(settings, d.name), Path)


def test_the_audience_falls_back_to_the_client_id_and_may_differ():
    assert Settings.from_env(production(FEDERATOR_OIDC_CLIENT_ID="b")).oidc_audience == "b"
    settings = Settings.from_env(production(FEDERATOR_OIDC_CLIENT_ID="b",
                                            FEDERATOR_OIDC_AUDIENCE="api"))
    assert settings.oidc_client_id == "b" and settings.oidc_audience == "api"


def test_trailing_slashes_are_dropped_from_the_public_url_and_issuer():
    settings = Settings.from_env(production(FEDERATOR_PUBLIC_URL="https://b.example//",
                                            FEDERATOR_OIDC_ISSUER="https://idp.example/r/"))
    assert settings.public_url == "https://b.example"
    assert settings.oidc_issuer == "https://idp.example/r"


def test_settings_are_frozen_and_built_directly_by_keyword():
    settings = Settings(env="development", deadline_default_ms=200, redis_url="redis://r")
    assert settings.deadline_default_ms == 200 and settings.development
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.redis_url = None  # type: ignore[misc]
    assert Settings(generated=("FEDERATOR_SECRET_KEY",)) == Settings()
