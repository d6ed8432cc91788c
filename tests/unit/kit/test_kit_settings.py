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


def test_defaults(tmp_path):
    text = "\n".join(line for line in GOOD.splitlines()
                     if not line.startswith(("match_", "possible_", "simulate_")))
    s = load_settings(write(tmp_path, text))
    assert (s.match_threshold, s.possible_threshold) == (0.99, 0.2)  # probabilities
    assert s.moved_house == "match_if_unique"
    assert s.match_model_path is None and s.record_ref_key is None
    assert s.simulate_delay_ms == 0


def test_paths_and_keys_from_the_file_and_the_environment(tmp_path):
    from adapters.kit.settings import settings_from_mapping

    (tmp_path / "mu.json").write_text("{}")
    data = {"authority_id": "a", "name": "A", "jwks_url": "https://b.example/j",
            "broker_issuer": "federator", "csv_path": "x.csv", "match_model_path": "mu.json"}
    s = settings_from_mapping(data, base_dir=tmp_path, environ={"KIT_RECORD_REF_KEY": "k" * 32})
    assert s.match_model_path == str(tmp_path / "mu.json")
    assert s.record_ref_key == "k" * 32
    s = settings_from_mapping({**data, "record_ref_key": "s" * 40}, base_dir=tmp_path,
                              environ={"KIT_RECORD_REF_KEY": "k" * 32})
    assert s.record_ref_key == "s" * 40  # the file wins


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
         "match_threshold: must be a probability between 0 and 1"),
        (lambda t: t.replace("match_threshold = 0.9", "match_threshold = 1"),
         "match_threshold: must be a probability between 0 and 1"),
        (lambda t: t.replace("possible_threshold = 0.5", "possible_threshold = 0"),
         "possible_threshold: must be a probability between 0 and 1"),
        (lambda t: t.replace("possible_threshold = 0.5", "possible_threshold = -0.1"),
         "possible_threshold: must be a probability between 0 and 1"),
        (lambda t: t.replace("possible_threshold = 0.5", "possible_threshold = 0.95"),
         "possible_threshold: must not be above"),
        (lambda t: t + 'record_ref_key = "short"\n', "record_ref_key: must be at least 32"),
        (lambda t: t + 'match_model_path = "missing.json"\n',
         "match_model_path: .*missing.json: not found"),
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


def test_the_documented_example_loads(tmp_path, monkeypatch):
    monkeypatch.setenv("KIT_RECORD_REF_KEY", "k" * 32)  # its secret, from the environment
    example = Path(__file__).resolve().parents[3] / "adapters" / "kit" / "kit.example.toml"
    s = load_settings(write(tmp_path, example.read_text(encoding="utf-8")))
    assert s.source == "csv" and s.csv_path == str(tmp_path / "kit.csv")


@pytest.mark.parametrize(("content", "message"), [
    ("not json", "match_model_path: .*not valid JSON"),
    ("[1, 2]", "match_model_path: the file must hold a JSON object"),
    ('{"m": {"given_name": {"exact": 1.0}}}', r"match_model_path: m.given_name.exact: must be"),
    ('{"u": {"postcode": {"full": 0}}}', r"match_model_path: u.postcode.full: must be"),
    ('{"m": {"given_name": {"exact": "high"}}}', r"match_model_path: m.given_name.exact"),
    ('{"m": {"shoe_size": {}}}', r"match_model_path: m.shoe_size: unknown field"),
    ('{"u": {"postcode": {"street": 0.1}}}', r"match_model_path: u.postcode.street: unknown"),
    ('{"m": {"date_of_birth": {"exact": 0.5}}}',
     r"match_model_path: m.date_of_birth: the levels must add up to 1"),
    ('{"present_prior": 1}', "match_model_path: present_prior: must be"),
    ('{"swap_probability": 0}', "match_model_path: swap_probability: must be"),
    ('{"weights": {}}', "match_model_path: weights: unknown key"),
])
def test_a_bad_model_file_stops_the_kit_naming_the_setting(tmp_path, content, message):
    (tmp_path / "mu.json").write_text(content)
    with pytest.raises(SettingsError, match=message):
        load_settings(write(tmp_path, GOOD + 'match_model_path = "mu.json"\n'))


def test_a_good_model_file_loads(tmp_path):
    (tmp_path / "mu.json").write_text('{"m": {"given_name": {"exact": 0.85, "other": 0.03}}}')
    s = load_settings(write(tmp_path, GOOD + 'match_model_path = "mu.json"\n'))
    assert s.match_model_path == str(tmp_path / "mu.json")


@pytest.mark.parametrize("url", [
    "https://broker.example/.well-known/jwks.json", "http://127.0.0.1:5000/jwks.json",
    "http://127.8.9.10/jwks.json", "http://[::1]:8000/jwks.json", "http://localhost/jwks.json",
])
def test_jwks_url_https_or_loopback(tmp_path, url):
    text = GOOD.replace("http://127.0.0.1:5000/.well-known/jwks.json", url)
    text += 'record_ref_key = "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk"\n'
    assert load_settings(write(tmp_path, text)).jwks_url == url


def test_a_kit_whose_broker_is_not_on_loopback_needs_its_record_ref_key(tmp_path):
    text = GOOD.replace("http://127.0.0.1:5000", "https://broker.example")
    with pytest.raises(SettingsError, match="record_ref_key: required"):
        load_settings(write(tmp_path, text))
    with pytest.raises(SettingsError, match="record_ref_key: must be at least 32"):
        load_settings(write(tmp_path, text + f'record_ref_key = "{" " * 40}"\n'))
    assert load_settings(write(tmp_path, GOOD)).record_ref_key is None  # loopback: the demo
