from __future__ import annotations

from pathlib import Path

import pytest

from adapters.kit.settings import KitSettings, SettingsError, load_settings

GOOD = """
authority_id = "leeds-cs"
name = "Leeds Children's Services"
jwks_url = "http://127.0.0.1:5000/.well-known/jwks.json"
broker_issuer = "federator-demo"
source = "csv"
csv_path = "leeds.csv"
match_threshold = 0.9
possible_threshold = 0.5
simulate_delay_ms = 200
audit_log_path = "audit/kit.jsonl"
"""


def write(tmp_path, text):
    path = tmp_path / "kit.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_load_settings(tmp_path):
    s = load_settings(write(tmp_path, GOOD))
    assert isinstance(s, KitSettings)
    assert s.authority_id == "leeds-cs"
    assert s.broker_issuer == "federator-demo"
    assert s.csv_path == str(tmp_path / "leeds.csv")  # relative to the settings file
    assert s.audit_log_path == str(tmp_path / "audit" / "kit.jsonl")
    assert (s.match_threshold, s.possible_threshold) == (0.9, 0.5)
    assert s.simulate_delay_ms == 200
    assert s.max_body_bytes == 65536
    assert s.redis_url is None


def test_defaults_and_int_thresholds(tmp_path):
    text = "\n".join(line for line in GOOD.splitlines()
                     if not line.startswith(("match_", "possible_", "simulate_")))
    s = load_settings(write(tmp_path, text + "\nmatch_threshold = 1\n"))
    assert s.match_threshold == 1.0 and isinstance(s.match_threshold, float)
    assert s.possible_threshold == 0.6
    assert s.simulate_delay_ms == 0


def test_settings_are_frozen(tmp_path):
    s = load_settings(write(tmp_path, GOOD))
    with pytest.raises(AttributeError):
        s.name = "other"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda t: t.replace('authority_id = "leeds-cs"\n', ""), "authority_id: missing"),
        (lambda t: t.replace('jwks_url = "http://127.0.0.1:5000/.well-known/jwks.json"\n', ""),
         "jwks_url: missing"),
        (lambda t: t.replace("match_threshold = 0.9", 'match_threshold = "high"'),
         "match_threshold: must be float"),
        (lambda t: t.replace("simulate_delay_ms = 200", "simulate_delay_ms = 0.5"),
         "simulate_delay_ms: must be int"),
        (lambda t: t.replace("simulate_delay_ms = 200", "simulate_delay_ms = true"),
         "simulate_delay_ms: must be an integer"),
        (lambda t: t.replace("simulate_delay_ms = 200", "simulate_delay_ms = -1"),
         "simulate_delay_ms: must not be negative"),
        (lambda t: t.replace('source = "csv"', 'source = "ldap"'), "source: must be one of"),
        (lambda t: t.replace('csv_path = "leeds.csv"\n', ""), "csv_path: required"),
        (lambda t: t.replace('source = "csv"', 'source = "sql"'), "sql_url: required"),
        (lambda t: t.replace('source = "csv"', 'source = "sql"\nsql_url = "sqlite://"'),
         "sql_query: required"),
        (lambda t: t.replace("match_threshold = 0.9", "match_threshold = 1.5"),
         "match_threshold: must be between"),
        (lambda t: t.replace("possible_threshold = 0.5", "possible_threshold = 0.95"),
         "possible_threshold: must not be above"),
        (lambda t: t + 'colour = "blue"\n', "colour: unknown setting"),
        (lambda t: t.replace('name = "Leeds Children\'s Services"', "name = 3"),
         "name: must be str"),
        (lambda t: t + "[broken", "not valid TOML"),
        # the kit trusts only what it should: the broker named, its keys over https
        (lambda t: t.replace('broker_issuer = "federator-demo"\n', ""),
         "broker_issuer: missing"),
        (lambda t: t.replace('broker_issuer = "federator-demo"', 'broker_issuer = ""'),
         "broker_issuer: must not be empty"),
        (lambda t: t.replace("http://127.0.0.1:5000", "http://broker.example"),
         "jwks_url: must be an https:// URL"),
        (lambda t: t.replace("http://127.0.0.1:5000", "http://10.0.0.5"),
         "jwks_url: must be an https:// URL"),
        (lambda t: t.replace("http://127.0.0.1:5000", "ftp://127.0.0.1"),
         "jwks_url: must be an https:// URL"),
        (lambda t: t.replace("http://127.0.0.1:5000", "https://user:pw@broker.example"),
         "jwks_url: must be an https:// URL"),
    ],
)
def test_errors_name_the_key(tmp_path, change, message):
    with pytest.raises(SettingsError, match=message):
        load_settings(write(tmp_path, change(GOOD)))


def test_missing_file(tmp_path):
    with pytest.raises(SettingsError, match="not found"):
        load_settings(tmp_path / "nope.toml")


def test_sql_settings(tmp_path):
    text = GOOD.replace('source = "csv"', 'source = "sql"\nsql_url = "sqlite:///x.db"\n'
                        'sql_query = "SELECT 1"')
    s = load_settings(write(tmp_path, text))
    assert (s.source, s.sql_url, s.sql_query) == ("sql", "sqlite:///x.db", "SELECT 1")


def test_the_documented_example_loads(tmp_path):
    example = Path(__file__).resolve().parents[3] / "adapters" / "kit" / "kit.example.toml"
    s = load_settings(write(tmp_path, example.read_text(encoding="utf-8")))
    assert s.source == "csv" and s.csv_path == str(tmp_path / "kit.csv")


@pytest.mark.parametrize("url", [
    "https://broker.example/.well-known/jwks.json", "http://127.0.0.1:5000/jwks.json",
    "http://127.8.9.10/jwks.json", "http://[::1]:8000/jwks.json", "http://localhost/jwks.json",
])
def test_jwks_url_https_or_loopback(tmp_path, url):
    text = GOOD.replace("http://127.0.0.1:5000/.well-known/jwks.json", url)
    assert load_settings(write(tmp_path, text)).jwks_url == url
