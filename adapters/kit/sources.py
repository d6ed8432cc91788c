"""Where the kit reads the authority's children and involvements from.

Both sources give the same shape: one row per involvement, with the child's
columns repeated (see :data:`COLUMNS` and ``config/kit-template.csv``). A
row with an empty ``professional_name`` means the child is known but no
professional is involved.
"""

from __future__ import annotations

import csv
import hashlib
import os
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from adapters.kit.candidates import RecordIndex, build_index

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

COLUMNS: tuple[str, ...] = (
    "child_ref", "nhs_number", "given_name", "family_name", "date_of_birth", "postcode",
    "shielded", "shield_notice", "professional_name", "role", "service", "sensitive",
    "organisation", "team", "phone", "email", "registration_number", "from", "to",
)
#: Optional last column: the child's allocated worker, told when the child is
#: looked up (``adapters.kit.notify``). Files without it stay valid.
OPTIONAL_COLUMNS: tuple[str, ...] = ("worker_email",)


class SourceError(ValueError):
    """The authority's data cannot be read; the message says which row and column."""


@dataclass(frozen=True)
class Involvement:
    professional_name: str
    role: str
    service: str
    organisation: str
    team: str | None = None
    phone: str | None = None
    email: str | None = None
    registration_number: str | None = None
    sensitive: bool = False
    from_: date | None = None
    to: date | None = None


@dataclass
class ChildRecord:
    child_ref: str
    nhs_number: str | None
    given_name: str
    family_name: str
    date_of_birth: date | None
    postcode: str | None
    shielded: bool = False
    shield_notice: str | None = None
    worker_email: str | None = None
    involvements: list[Involvement] = field(default_factory=list)


class Records(list[ChildRecord]):
    """The children a source loaded, with the matcher's index
    (:mod:`adapters.kit.candidates`) built on first use and kept with them: a
    CSV reload makes new ``Records``, so a new index."""

    _index: RecordIndex | None = None

    @property
    def match_index(self) -> RecordIndex:
        """Do not change the list after this is built: the index would not follow."""
        if self._index is None:
            self._index = build_index(self)
        return self._index


class Source(Protocol):
    def records(self) -> list[ChildRecord]: ...


# --------------------------------------------------------------------------
# Row parsing, shared by both sources
# --------------------------------------------------------------------------

_TRUE = {"true", "1", "yes", "y", "t"}
_FALSE = {"false", "0", "no", "n", "f", ""}


def _text(value: Any) -> str | None:
    if value is None:
        return None
    s = str(value).strip()
    return s or None


def _bool(value: Any, column: str, where: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return bool(value)
    s = (_text(value) or "").lower()
    if s in _TRUE:
        return True
    if s in _FALSE:
        return False
    raise SourceError(f"{where}: {column} must be true or false, not {value!r}")


def _date(value: Any, column: str, where: str) -> date | None:
    if isinstance(value, date):
        return value
    s = _text(value)
    if s is None:
        return None
    try:
        return date.fromisoformat(s)
    except ValueError as e:
        raise SourceError(f"{where}: {column} must be an ISO date, not {s!r}") from e


def records_from_rows(
    rows: Iterable[Mapping[str, Any]], *, origin: str = "row"
) -> list[ChildRecord]:
    """Group involvement rows into child records, in the order children first appear."""
    children: dict[str, ChildRecord] = {}
    for number, row in enumerate(rows, start=1):
        where = f"{origin} {number}"
        missing = [c for c in COLUMNS if c not in row]
        if missing:
            raise SourceError(f"{where}: missing column {missing[0]}")
        ref = _text(row["child_ref"])
        if ref is None:
            raise SourceError(f"{where}: child_ref must not be empty")
        child = children.get(ref)
        if child is None:
            child = ChildRecord(
                child_ref=ref,
                nhs_number=_text(row["nhs_number"]),
                given_name=_text(row["given_name"]) or "",
                family_name=_text(row["family_name"]) or "",
                date_of_birth=_date(row["date_of_birth"], "date_of_birth", where),
                postcode=_text(row["postcode"]),
                shielded=_bool(row["shielded"], "shielded", where),
                shield_notice=_text(row["shield_notice"]),
                worker_email=_text(row.get("worker_email")),
            )
            children[ref] = child
        elif child.worker_email is None:
            child.worker_email = _text(row.get("worker_email"))
        name = _text(row["professional_name"])
        if name is None:
            continue
        child.involvements.append(Involvement(
            professional_name=name,
            role=_text(row["role"]) or "",
            service=_text(row["service"]) or "",
            organisation=_text(row["organisation"]) or "",
            team=_text(row["team"]),
            phone=_text(row["phone"]),
            email=_text(row["email"]),
            registration_number=_text(row["registration_number"]),
            sensitive=_bool(row["sensitive"], "sensitive", where),
            from_=_date(row["from"], "from", where),
            to=_date(row["to"], "to", where),
        ))
    return list(children.values())


# --------------------------------------------------------------------------
# CSV
# --------------------------------------------------------------------------


class CsvSource:
    """Reads a CSV file in the template's format; re-reads it when it changes."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._records = Records()
        self.records()  # fail at start-up, not at the first lookup

    def records(self) -> list[ChildRecord]:
        try:
            st = self.path.stat()
        except OSError as e:
            raise SourceError(f"cannot read {self.path}: {e.strerror}") from e
        stamp = (st.st_mtime_ns, st.st_size)
        with self._lock:
            if stamp != self._stamp:
                self._records = self._read()
                self._records.match_index  # noqa: B018 - built at (re)load, not at a lookup
                self._stamp = stamp
            return self._records

    def _read(self) -> Records:
        with self.path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            header = tuple(h.strip() for h in (reader.fieldnames or ()))
            if header not in (COLUMNS, COLUMNS + OPTIONAL_COLUMNS):
                missing = [c for c in COLUMNS if c not in header]
                detail = f"missing column {missing[0]}" if missing else "columns out of order"
                raise SourceError(
                    f"{self.path}: {detail}; expected header {','.join(COLUMNS)}"
                )
            reader.fieldnames = list(header)
            # Data rows start on line 2 of the file.
            rows = list(reader)
        return Records(records_from_rows(rows, origin=f"{self.path.name} data row"))


# --------------------------------------------------------------------------
# SQL
# --------------------------------------------------------------------------


class SqlSource:
    """Runs a configured query (any SQLAlchemy database) returning :data:`COLUMNS`.

    Quote ``from`` and ``to`` in the query (``AS "from"``): they are SQL keywords.
    """

    def __init__(self, url: str, query: str, *, engine: Engine | None = None) -> None:
        # Imported here: a kit reading a CSV installs without SQLAlchemy
        # (`pip install 'federator-adapter[sql]'` adds it; docs/kit-install.md).
        try:
            from sqlalchemy import create_engine, text
        except ImportError as e:
            raise SourceError("source = 'sql' needs SQLAlchemy: install "
                              "'federator-adapter[sql]' and the database's driver") from e
        self.engine = engine or create_engine(url, pool_pre_ping=True)
        self.query = text(query)
        self._lock = threading.Lock()
        self._digest: bytes | None = None
        self._records = Records()

    def records(self) -> list[ChildRecord]:
        """Read at every lookup (the database is the live copy). Rows that are the
        same as last time (a digest of them) keep the records already parsed and
        their matching index: building the index costs far more than the digest."""
        with self.engine.connect() as conn:
            result = conn.execute(self.query)
            columns = tuple(result.keys())
            rows = [tuple(r) for r in result]
        digest = _digest(columns, rows)
        with self._lock:
            if digest != self._digest:
                records = Records(records_from_rows(
                    [dict(zip(columns, r, strict=True)) for r in rows], origin="query row"))
                records.match_index  # noqa: B018 - built once per change of the rows
                self._records, self._digest = records, digest
            return self._records

    def close(self) -> None:
        self.engine.dispose()


def _digest(columns: tuple[str, ...], rows: list[tuple[Any, ...]]) -> bytes:
    """What the query returned, in 32 bytes: ``repr`` of each value is exact for
    the types a database driver gives (text, numbers, dates, booleans, None)."""
    h = hashlib.blake2b(repr(columns).encode(), digest_size=32)
    for row in rows:
        h.update(repr(row).encode())
        h.update(b"\x1e")
    return h.digest()
