"""``federator-adapter estimate``: u from the authority's records, written to a
file the kit's ``match_model_path`` loads."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from adapters.kit.cli import main
from adapters.kit.match_quality import generate_population
from adapters.kit.settings import load_settings
from adapters.kit.sources import COLUMNS


def write_kit(tmp_path: Path, rows: int = 300) -> Path:
    lines = [",".join(COLUMNS)]
    for r in generate_population(rows, seed=2):
        values = {"child_ref": r.child_ref, "given_name": r.given_name,
                  "family_name": r.family_name, "date_of_birth": r.date_of_birth.isoformat(),
                  "postcode": r.postcode or "", "shielded": "false", "sensitive": "false"}
        lines.append(",".join(f'"{values.get(c, "")}"' for c in COLUMNS))
    (tmp_path / "kit.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    config = tmp_path / "kit.toml"
    config.write_text('authority_id = "a"\nname = "A"\njwks_url = "https://b.example/j"\n'
                      'broker_issuer = "federator"\ncsv_path = "kit.csv"\n'
                      'record_ref_key = "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk"\n', encoding="utf-8")
    return config


def test_estimate_writes_a_file_the_kit_then_loads(tmp_path: Path) -> None:
    config = write_kit(tmp_path)
    out = tmp_path / "kit-mu.json"
    result = CliRunner().invoke(main, ["estimate", "--config", str(config), "--out", str(out),
                                       "--pairs", "5000"])
    assert result.exit_code == 0, result.output
    assert "300 records" in result.output and "documented defaults" in result.output
    data = json.loads(out.read_text())
    assert data["estimated"]["records"] == 300 and set(data) >= {"m", "u"}
    config.write_text(config.read_text() + 'match_model_path = "kit-mu.json"\n')
    assert load_settings(config).match_model_path == str(out)


def test_estimate_names_a_bad_setting(tmp_path: Path) -> None:
    config = write_kit(tmp_path, rows=5)
    config.write_text(config.read_text() + "match_threshold = 2\n")
    result = CliRunner().invoke(main, ["estimate", "--config", str(config), "--out",
                                       str(tmp_path / "x.json")])
    assert result.exit_code != 0 and "match_threshold" in result.output
