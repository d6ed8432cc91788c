"""The demo's synthetic world and the files written from it."""

from __future__ import annotations

import csv
import tomllib
from pathlib import Path

import nhs_number
import pytest

from federator.demo.files import (
    CSV_COLUMNS,
    toml_document,
    toml_string,
    write_world,
)
from federator.demo.world import (
    COUNCILS,
    REFERENCE_DATE,
    district_of,
    generate_world,
)

ROOT = Path(__file__).resolve().parents[3]
POSTCODES = ROOT / "config" / "postcodes.csv"
EXPECTED_COLUMNS = [
    "child_ref", "nhs_number", "given_name", "family_name", "date_of_birth", "postcode",
    "shielded", "shield_notice", "professional_name", "role", "service", "sensitive",
    "organisation", "team", "phone", "email", "registration_number", "from", "to",
]
JWKS = "http://127.0.0.1:5000/.well-known/jwks.json"


@pytest.fixture(scope="module")
def world():
    return generate_world()


@pytest.fixture(scope="module")
def postcode_areas() -> dict[str, str]:
    with POSTCODES.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        assert reader.fieldnames == ["district", "gss_code", "area_name"]
        rows = list(reader)
    districts = [r["district"] for r in rows]
    assert len(districts) == len(set(districts)), "a district maps to one area"
    return {r["district"]: r["gss_code"] for r in rows}


def _fingerprint(w) -> tuple:
    return (
        [(a.id, a.behaviour, a.contact) for a in w.authorities],
        [(c.child_ref, c.nhs_number, c.given_name, c.family_name, c.date_of_birth,
          tuple(c.postcodes), tuple(c.known_to), c.shielded) for c in w.children],
        [(i.child_ref, i.authority_id, i.professional_name, i.phone, i.from_, i.to)
         for i in w.involvements],
    )


def test_same_seed_same_world_different_seed_differs(world):
    assert _fingerprint(generate_world()) == _fingerprint(world)
    assert _fingerprint(generate_world(seed=7)) != _fingerprint(world)


def test_sizes_and_defaults(world):
    assert len(world.authorities) == 6
    assert len(world.children) == 60
    assert len({c.child_ref for c in world.children}) == 60
    big = generate_world(authorities=10, children=80)
    assert len(big.authorities) == 10
    assert len(COUNCILS) >= 9
    with pytest.raises(ValueError):
        generate_world(authorities=len(COUNCILS) + 2)


def test_nhs_numbers_valid_test_range_unique(world):
    numbers = [c.nhs_number for c in world.children]
    assert len(set(numbers)) == len(numbers)
    for n in numbers:
        assert len(n) == 10 and n.isdigit() and n.startswith("999")
        assert nhs_number.is_valid(n)
        assert nhs_number.calculate_checksum(n[:9]) == int(n[9])


@pytest.mark.parametrize("seed", [1, 2026, 99])
@pytest.mark.parametrize("authorities", [4, 6, 9])
def test_exactly_one_of_each_special(seed, authorities):
    w = generate_world(seed=seed, authorities=authorities)
    behaviours = [a.behaviour for a in w.authorities]
    assert behaviours.count("slow") == 1
    assert behaviours.count("down") == 1
    national = [a for a in w.authorities if a.coverage == ["national"]]
    assert len(national) == 1 and national[0].behaviour == "normal"
    assert sum(c.shielded for c in w.children) == 1
    sensitive = [i for i in w.involvements if i.sensitive]
    assert len({i.child_ref for i in sensitive}) == 1
    assert {i.service for i in sensitive} <= {"sexual health", "substance misuse",
                                              "mental health"}
    # the shielded child's home authority is one that answers, and knows the child
    shielded = next(c for c in w.children if c.shielded)
    assert shielded.home_authority in shielded.known_to
    assert w.authority(shielded.home_authority).behaviour == "normal"
    assert shielded.known_to, "a shielded child is known somewhere"


def test_authority_codes(world):
    codes = {a.id: a.code for a in world.authorities}
    assert codes["leeds-cs"] == "E08000035"
    assert codes["bradford-cs"] == "E08000032"
    assert codes["yorkshire-health"] == "RXX"
    for a in world.authorities:
        if a.coverage != ["national"]:
            assert a.coverage == [a.code]
            assert a.code.startswith("E0")


def test_variety_of_children(world):
    multi = [c for c in world.children if len(c.known_to) >= 2]
    assert multi
    assert any(len(c.known_to) == 3 for c in world.children) or len(multi) >= 3
    assert any(not c.known_to for c in world.children)
    assert any(i.to is not None and i.to < REFERENCE_DATE for i in world.involvements)
    # some professional is reported by two authorities with the same registration number
    shared = False
    for c in multi:
        seen: dict[str, set[str]] = {}
        for i in world.involvements_for(c.child_ref):
            if i.registration_number:
                seen.setdefault(i.registration_number, set()).add(i.authority_id)
        shared = shared or any(len(v) > 1 for v in seen.values())
    assert shared
    # known_to agrees with the involvements
    for c in world.children:
        held = {i.authority_id for i in world.involvements_for(c.child_ref)}
        assert held == set(c.known_to)
    shown = world.children_for_display(5)
    assert len(shown) == 5 and len({c.child_ref for c in shown}) == 5
    assert any(c.shielded for c in shown)
    assert any(not c.known_to for c in shown)
    assert all(world.label(c) for c in shown)
    summary = world.children_summary()
    assert summary[0]["nhs_number"] == world.children[0].nhs_number
    assert "known_to" in summary[0]


def test_contact_details_are_fictional(world):
    for i in world.involvements:
        if not i.professional_name:
            continue
        assert i.phone.startswith(("0113 496 0", "0114 496 0", "01632 960"))
        assert len(i.phone.replace(" ", "")) == 11
        assert i.email.endswith(("@example.gov.uk", "@example.nhs.uk"))
        assert i.from_ is not None
        assert i.to is None or i.to > i.from_


def test_postcodes_route_to_authorities_that_know_the_child(world, postcode_areas):
    for council in COUNCILS:
        for d in council.districts:
            assert postcode_areas[d] == council.code
    for c in world.children:
        assert c.postcodes
        areas = {postcode_areas[district_of(pc)] for pc in c.postcodes}
        home = world.authority(c.home_authority)
        assert home.code in areas
        for authority_id in c.known_to:
            a = world.authority(authority_id)
            if a.coverage != ["national"]:
                assert set(a.coverage) & areas, (c.child_ref, authority_id)


def test_district_of():
    assert district_of("LS6 2AB") == "LS6"
    assert district_of("ls62ab") == "LS6"
    assert district_of("YO1 7HH") == "YO1"


# --------------------------------------------------------------------------
# files
# --------------------------------------------------------------------------


def test_written_files_read_back(world, tmp_path):
    files = write_world(world, tmp_path, broker_jwks_url=JWKS, base_port=6201)
    assert list(CSV_COLUMNS) == EXPECTED_COLUMNS
    assert [p for _, p in files.ports] == list(range(6201, 6201 + len(world.authorities)))
    assert {a.authority.id for a in files.to_start()} == {
        a.id for a in world.authorities if a.behaviour != "down"}

    with files.registry_path.open("rb") as fh:
        registry = tomllib.load(fh)
    endpoints = registry["endpoint"]
    assert [e["id"] for e in endpoints] == [a.id for a in world.authorities]
    for e, (authority, port) in zip(endpoints, files.ports, strict=True):
        assert e == {
            "id": authority.id, "name": authority.name, "code": authority.code,
            "coverage": authority.coverage, "protocol": "federator-lookup/1",
            "url": f"http://127.0.0.1:{port}", "timeout_ms": 3000,
            "contact": authority.contact,
        }

    total_rows = 0
    for authority in world.authorities:
        with files.settings_paths[authority.id].open("rb") as fh:
            settings = tomllib.load(fh)
        assert settings == {
            "authority_id": authority.id, "name": authority.name, "jwks_url": JWKS,
            "broker_issuer": "federator-demo-broker", "source": "csv",
            "csv_path": str(files.csv_paths[authority.id].resolve()),
            "simulate_delay_ms": 2000 if authority.behaviour == "slow" else 0,
            "witness_path": str(files.csv_paths[authority.id].resolve().parent
                                / f"{authority.id}-witness.json"),
        }
        with files.csv_paths[authority.id].open(newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            assert reader.fieldnames == EXPECTED_COLUMNS
            rows = list(reader)
        total_rows += len(rows)
        assert len(rows) == len(world.involvements_at(authority.id))
        for row in rows:
            assert row["shielded"] in ("true", "false")
            assert row["sensitive"] in ("true", "false")
            assert (row["shield_notice"] != "") == (row["shielded"] == "true")
            child = world.child(row["child_ref"])
            assert row["nhs_number"] == child.nhs_number
            assert row["date_of_birth"] == child.date_of_birth.isoformat()
            assert row["postcode"] in child.postcodes
            assert row["to"] == "" or row["to"] < REFERENCE_DATE.isoformat()
    assert total_rows == len(world.involvements)

    all_rows = []
    for path in files.csv_paths.values():
        with path.open(newline="", encoding="utf-8") as fh:
            all_rows += list(csv.DictReader(fh))
    assert sum(r["shielded"] == "true" for r in all_rows) >= 1
    assert len({r["child_ref"] for r in all_rows if r["shielded"] == "true"}) == 1
    assert any(r["professional_name"] == "" for r in all_rows)


@pytest.mark.parametrize("text", [
    "plain", 'quote " inside', "back\\slash", "new\nline\ttab", "ctrl\x01\x7f", "é ü ✓",
    "Children's Services", "",
])
def test_toml_escaping_round_trips(text):
    doc = toml_document({"value": text, "n": 3, "flag": False, "items": [text, "b"],
                         "table": {"inner": text}})
    assert tomllib.loads(doc) == {"value": text, "n": 3, "flag": False, "items": [text, "b"],
                                  "table": {"inner": text}}
    assert tomllib.loads(f"k = {toml_string(text)}\n")["k"] == text


def test_toml_string_round_trips_any_text():
    from hypothesis import given, settings
    from hypothesis import strategies as st

    @settings(max_examples=200, deadline=None)
    @given(st.text(alphabet=st.characters(exclude_categories=("Cs",))))
    def check(text):
        assert tomllib.loads(f"k = {toml_string(text)}\n")["k"] == text

    check()


def test_same_world_in_another_process_whatever_the_hash_seed(world):
    import json
    import os
    import subprocess
    import sys

    script = ("import json; from federator.demo.world import generate_world; "
              "w = generate_world(); "
              "print(json.dumps([w.children_summary(), repr(w.involvements)], default=str))")
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=ROOT,
        env={**os.environ, "PYTHONHASHSEED": "12345"}, timeout=60,
    ).stdout
    assert json.loads(out) == json.loads(
        json.dumps([world.children_summary(), repr(world.involvements)], default=str))
