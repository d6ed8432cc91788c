"""Export formats for the trail: JSON lines and CSV. Pure: records in, text out.

Each exported record carries ``prev_hash`` and ``hash`` and (CSV: the ``body``
column; JSON lines: the record itself, re-encoded canonically) what the hash
covers, so a recipient can check every record and, with the signed checkpoint
that accompanies the export, that none is missing at its end.
"""

from __future__ import annotations

import csv
import io
import json
import unicodedata
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from federator.audit.redaction import sealed_body

FORMATS = ("jsonl", "csv")
COLUMNS = ("seq", "at", "event", "lookup_id", "actor_id", "actor_role", "actor_organisation",
           "purpose", "basis_type", "child_pseudonym", "authorities", "outcomes", "flags",
           "prev_hash", "hash", "body")
_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def body_of(record: Mapping[str, Any]) -> dict[str, Any]:
    """The record as hashed: everything but its own hashes and, for a record that
    seals its free text (format 2), the opened text, salts and redaction notes."""
    return sealed_body(record)


def jsonl_lines(records: Iterable[Mapping[str, Any]]) -> Iterator[str]:
    for record in records:
        yield json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False) + "\n"


def cell(value: Any) -> str:
    """A CSV cell a spreadsheet will not run: one that starts with a formula
    character, or with spaces or invisible characters before one (a spreadsheet
    trims them: `` =HYPERLINK(...)``), gets a leading apostrophe."""
    text = "" if value is None else str(value)
    if text.startswith(_FORMULA):
        return "'" + text
    start = 0
    while start < len(text) and (text[start].isspace()
                                 or unicodedata.category(text[start]) in ("Cf", "Zs")):
        start += 1
    return "'" + text if text[start:].startswith(_FORMULA) else text



def csv_row(record: Mapping[str, Any]) -> list[str]:
    authorities = record.get("authorities") or []
    outcomes = record.get("outcomes") or []
    flags = record.get("flags") or []
    derived = {
        "authorities": ";".join(str(a) for a in authorities),
        "outcomes": ";".join(f"{o.get('id')}:{o.get('outcome')}" for o in outcomes
                             if isinstance(o, Mapping)),
        "flags": ";".join(str(f.get("flag")) if isinstance(f, Mapping) else str(f)
                          for f in flags),
        "body": "" if record.get("pruned") else json.dumps(
            body_of(record), sort_keys=True, separators=(",", ":"), ensure_ascii=False),
    }
    row = []
    for column in COLUMNS:
        value = derived[column] if column in derived else record.get(column)
        row.append(value if column in ("body", "prev_hash", "hash") else cell(value))
    return row


def csv_lines(records: Iterable[Mapping[str, Any]]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    for record in records:
        writer.writerow(csv_row(record))
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    rest = buffer.getvalue()
    if rest:
        yield rest


def lines(records: Iterable[Mapping[str, Any]], fmt: str) -> Iterator[str]:
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}")
    return jsonl_lines(records) if fmt == "jsonl" else csv_lines(records)
