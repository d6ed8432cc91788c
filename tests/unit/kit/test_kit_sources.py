from __future__ import annotations

import os
import sqlite3
from datetime import date
from pathlib import Path

import pytest

from adapters.kit.sources import COLUMNS, CsvSource, SourceError, SqlSource

HEADER = ",".join(COLUMNS)
ROWS = [
    "C-1,943 476 5919,Amara,Okafor,2015-03-02,LS6 2AB,false,,Sam Patel,Social worker,"
    "children's social care,false,Example Council,West Team,01632 960001,"
    "sam@example.invalid,SW1,2025-09-01,",
    "C-1,943 476 5919,Amara,Okafor,2015-03-02,LS6 2AB,false,,Jo Reed,Nurse,sexual health,"
    "true,Example Health,,01632 960002,,,2023-01-01,2024-01-01",
    "C-2,,Ben,Smith,2012-07-07,BD1 1AA,true,Call the front door,,,,,,,,,,,",
]


def write_csv(path: Path, rows: list[str], header: str = HEADER) -> None:
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")


def test_template_has_the_documented_columns():
    template = Path(__file__).resolve().parents[3] / "config" / "kit-template.csv"
    records = CsvSource(template).records()
    assert template.read_text().splitlines()[0] == HEADER
    assert len(records) == 2
    assert records[1].involvements == []


def test_csv_groups_rows_by_child(tmp_path):
    path = tmp_path / "kit.csv"
    write_csv(path, ROWS)
    records = CsvSource(path).records()
    assert [r.child_ref for r in records] == ["C-1", "C-2"]
    amara, ben = records
    assert amara.nhs_number == "943 476 5919"
    assert amara.date_of_birth == date(2015, 3, 2)
    assert [i.professional_name for i in amara.involvements] == ["Sam Patel", "Jo Reed"]
    sam, jo = amara.involvements
    assert sam.to is None and sam.from_ == date(2025, 9, 1) and not sam.sensitive
    assert jo.sensitive and jo.to == date(2024, 1, 1) and jo.team is None and jo.email is None
    assert ben.nhs_number is None
    assert ben.shielded and ben.shield_notice == "Call the front door"
    assert ben.involvements == []


def test_csv_reloads_when_the_file_changes(tmp_path):
    path = tmp_path / "kit.csv"
    write_csv(path, ROWS[:1])
    source = CsvSource(path)
    first = source.records()
    assert [r.child_ref for r in first] == ["C-1"]
    assert source.records() is first  # unchanged file: not re-read
    write_csv(path, ROWS)
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert [r.child_ref for r in source.records()] == ["C-1", "C-2"]


@pytest.mark.parametrize(
    ("header", "rows", "message"),
    [
        (HEADER.replace(",postcode", ""), [], "missing column postcode"),
        (HEADER.replace("given_name,family_name", "family_name,given_name"), [],
         "columns out of order"),
        (HEADER, [ROWS[0].replace("2015-03-02", "02/03/2015")], "date_of_birth"),
        (HEADER, [ROWS[0].replace(",false,,Sam", ",maybe,,Sam")], "shielded"),
        (HEADER, ["," + ROWS[0].split(",", 1)[1]], "child_ref"),
    ],
)
def test_csv_errors_name_the_problem(tmp_path, header, rows, message):
    path = tmp_path / "kit.csv"
    write_csv(path, rows, header=header)
    with pytest.raises(SourceError, match=message):
        CsvSource(path)


def test_csv_missing_file(tmp_path):
    with pytest.raises(SourceError, match="cannot read"):
        CsvSource(tmp_path / "nope.csv")


QUERY = """
SELECT c.ref AS child_ref, c.nhs AS nhs_number, c.given AS given_name,
       c.family AS family_name, c.dob AS date_of_birth, c.postcode AS postcode,
       c.shielded AS shielded, c.notice AS shield_notice,
       i.name AS professional_name, i.role AS role, i.service AS service,
       i.sensitive AS sensitive, i.org AS organisation, i.team AS team, i.phone AS phone,
       i.email AS email, i.reg AS registration_number, i.start AS "from", i.finish AS "to"
FROM children c LEFT JOIN involvements i ON i.child = c.ref
ORDER BY c.ref, i.start
"""


@pytest.fixture
def sqlite_file(tmp_path):
    path = tmp_path / "authority.db"
    with sqlite3.connect(path) as db:
        db.executescript("""
            CREATE TABLE children (ref TEXT PRIMARY KEY, nhs TEXT, given TEXT, family TEXT,
                dob TEXT, postcode TEXT, shielded INTEGER, notice TEXT);
            CREATE TABLE involvements (child TEXT, name TEXT, role TEXT, service TEXT,
                sensitive INTEGER, org TEXT, team TEXT, phone TEXT, email TEXT, reg TEXT,
                start TEXT, finish TEXT);
            INSERT INTO children VALUES
                ('C-1', '9434765919', 'Amara', 'Okafor', '2015-03-02', 'LS6 2AB', 0, NULL),
                ('C-2', NULL, 'Ben', 'Smith', '2012-07-07', 'BD1 1AA', 1, 'Ring us');
            INSERT INTO involvements VALUES
                ('C-1', 'Sam Patel', 'Social worker', 'children''s social care', 0,
                 'Example Council', 'West', '01632 960001', NULL, NULL, '2025-09-01', NULL),
                ('C-1', 'Jo Reed', 'Nurse', 'sexual health', 1, 'Example Health', NULL,
                 NULL, 'jo@example.invalid', 'NMC1', '2026-01-01', NULL);
        """)
    db.close()
    return path


def test_sql_source_over_a_real_sqlite_file(sqlite_file):
    source = SqlSource(f"sqlite:///{sqlite_file}", QUERY)
    try:
        records = source.records()
    finally:
        source.close()
    assert [r.child_ref for r in records] == ["C-1", "C-2"]
    amara, ben = records
    assert amara.date_of_birth == date(2015, 3, 2)
    assert [(i.professional_name, i.sensitive) for i in amara.involvements] == [
        ("Sam Patel", False), ("Jo Reed", True)]
    assert amara.involvements[0].from_ == date(2025, 9, 1)
    assert amara.involvements[1].registration_number == "NMC1"
    assert ben.shielded and ben.shield_notice == "Ring us" and ben.involvements == []


def test_sql_source_sees_new_rows_without_restart(sqlite_file):
    source = SqlSource(f"sqlite:///{sqlite_file}", QUERY)
    try:
        assert len(source.records()) == 2
        with sqlite3.connect(sqlite_file) as db:
            db.execute("INSERT INTO children VALUES ('C-3', NULL, 'Cat', 'Jones',"
                       " '2019-01-01', NULL, 0, NULL)")
        db.close()
        assert [r.child_ref for r in source.records()] == ["C-1", "C-2", "C-3"]
    finally:
        source.close()


def test_sql_source_keeps_its_records_and_index_while_the_rows_are_the_same(sqlite_file):
    source = SqlSource(f"sqlite:///{sqlite_file}", QUERY)
    try:
        first = source.records()
        index = first.match_index
        assert source.records() is first and source.records().match_index is index
        with sqlite3.connect(sqlite_file) as db:  # the same number of rows, one value changed
            db.execute("UPDATE children SET family = 'Okafour' WHERE ref = 'C-1'")
        db.close()
        changed = source.records()
        assert changed is not first and changed.match_index is not index
        assert changed[0].family_name == "Okafour"
    finally:
        source.close()


def test_sql_query_missing_a_column(sqlite_file):
    source = SqlSource(f"sqlite:///{sqlite_file}", "SELECT ref AS child_ref FROM children")
    try:
        with pytest.raises(SourceError, match="missing column nhs_number"):
            source.records()
    finally:
        source.close()
