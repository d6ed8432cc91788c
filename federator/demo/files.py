"""Write a synthetic world to the files the demo runs from.

For every authority: ``<id>.csv`` (the adapter kit's CSV source) and
``<id>.toml`` (the kit's settings). For the broker: ``registry.toml``, a
registry seed in the format of DESIGN.md ("Registry", seeding), one
``[[endpoint]]`` per authority on consecutive loopback ports (the "down"
authority gets a port too; nothing listens on it).

TOML is written by hand (there is no writer in the standard library); the
tests read it back with ``tomllib``.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from .world import Authority, Child, Involvement, World, district_of

CSV_COLUMNS = (
    "child_ref", "nhs_number", "given_name", "family_name", "date_of_birth", "postcode",
    "shielded", "shield_notice", "professional_name", "role", "service", "sensitive",
    "organisation", "team", "phone", "email", "registration_number", "from", "to",
)
BROKER_ISSUER = "federator-demo-broker"
PROTOCOL = "federator-lookup/1"
ENDPOINT_TIMEOUT_MS = 3000


@dataclass
class AdapterFiles:
    authority: Authority
    port: int
    url: str
    csv_path: Path
    settings_path: Path

    @property
    def should_start(self) -> bool:
        """False for the deliberately "down" authority: nothing listens."""
        return self.authority.behaviour != "down"


@dataclass
class DemoFiles:
    directory: Path
    registry_path: Path
    adapters: list[AdapterFiles] = field(default_factory=list)

    @property
    def ports(self) -> list[tuple[Authority, int]]:
        return [(a.authority, a.port) for a in self.adapters]

    @property
    def csv_paths(self) -> dict[str, Path]:
        return {a.authority.id: a.csv_path for a in self.adapters}

    @property
    def settings_paths(self) -> dict[str, Path]:
        return {a.authority.id: a.settings_path for a in self.adapters}

    def to_start(self) -> list[AdapterFiles]:
        return [a for a in self.adapters if a.should_start]


# --------------------------------------------------------------------------
# TOML (a tiny writer for strings, ints, floats, bools, lists and tables)
# --------------------------------------------------------------------------


def toml_string(value: str) -> str:
    """A TOML basic string, escaped."""
    out = ['"']
    for ch in value:
        code = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\u{code:04X}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("TOML floats must be finite here")
        return repr(value)
    if isinstance(value, str):
        return toml_string(value)
    if isinstance(value, Path):
        return toml_string(str(value))
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")


def _key(name: str) -> str:
    if name and all(ch.isascii() and (ch.isalnum() or ch in "-_") for ch in name):
        return name
    return toml_string(name)


def toml_table_body(values: Mapping[str, object]) -> str:
    """``key = value`` lines for the plain values of a mapping."""
    return "".join(
        f"{_key(k)} = {toml_value(v)}\n" for k, v in values.items()
        if v is not None and not isinstance(v, Mapping)
    )


def toml_document(values: Mapping[str, object]) -> str:
    """A document of top-level keys and (one level of) sub-tables."""
    text = toml_table_body(values)
    for k, v in values.items():
        if isinstance(v, Mapping):
            text += f"\n[{_key(k)}]\n" + toml_table_body(v)
    return text


def toml_array_of_tables(name: str, items: Iterable[Mapping[str, object]]) -> str:
    """``[[name]]`` entries; a mapping value becomes ``[name.key]``."""
    chunks = []
    for item in items:
        chunk = f"[[{_key(name)}]]\n" + toml_table_body(item)
        for k, v in item.items():
            if isinstance(v, Mapping):
                chunk += f"[{_key(name)}.{_key(k)}]\n" + toml_table_body(v)
        chunks.append(chunk)
    return "\n".join(chunks)


# --------------------------------------------------------------------------
# CSV rows
# --------------------------------------------------------------------------


def _bool(value: bool) -> str:
    return "true" if value else "false"


def _iso(value: date | None) -> str:
    return value.isoformat() if value else ""


def shield_notice(authority: Authority) -> str:
    return (f"This child's record is restricted at {authority.name}. Contact "
            f"{authority.contact} and ask for the duty manager.")


def csv_rows(world: World, authority: Authority) -> list[dict[str, str]]:
    """The kit CSV rows for one authority: one row per involvement."""
    rows = []
    for inv in world.involvements_at(authority.id):
        child = world.child(inv.child_ref)
        rows.append(_row(child, inv, authority))
    return rows


def _row(child: Child, inv: Involvement, authority: Authority) -> dict[str, str]:
    shielded = child.shielded and child.home_authority == authority.id
    return {
        "child_ref": child.child_ref,
        "nhs_number": child.nhs_number,
        "given_name": child.given_name,
        "family_name": child.family_name,
        "date_of_birth": child.date_of_birth.isoformat(),
        "postcode": _postcode_for(child, authority),
        "shielded": _bool(shielded),
        "shield_notice": shield_notice(authority) if shielded else "",
        "professional_name": inv.professional_name,
        "role": inv.role,
        "service": inv.service,
        "sensitive": _bool(inv.sensitive),
        "organisation": inv.organisation,
        "team": inv.team,
        "phone": inv.phone,
        "email": inv.email,
        "registration_number": inv.registration_number,
        "from": _iso(inv.from_),
        "to": _iso(inv.to),
    }


def _postcode_for(child: Child, authority: Authority) -> str:
    """The child's postcode as this authority holds it: one in its own
    districts if there is one (a council that knew the child before a move
    holds the old address), otherwise the current one."""
    for pc in child.postcodes:
        if district_of(pc) in authority.districts:
            return pc
    return child.postcodes[0] if child.postcodes else ""


def write_csv(path: Path, rows: Iterable[Mapping[str, str]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(CSV_COLUMNS), lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow(row)


# --------------------------------------------------------------------------
# Whole world
# --------------------------------------------------------------------------


def kit_settings(authority: Authority, *, csv_path: Path, broker_jwks_url: str) -> dict:
    return {
        "authority_id": authority.id,
        "name": authority.name,
        "jwks_url": broker_jwks_url,
        "broker_issuer": BROKER_ISSUER,
        "source": "csv",
        "csv_path": str(csv_path),
        "simulate_delay_ms": authority.simulate_delay_ms,
        # the broker's signed audit checkpoint, as this kit witnesses it
        "witness_path": str(csv_path.parent / f"{authority.id}-witness.json"),
    }


def registry_entry(authority: Authority, url: str) -> dict:
    return {
        "id": authority.id,
        "name": authority.name,
        "code": authority.code,
        "coverage": list(authority.coverage),
        "protocol": PROTOCOL,
        "url": url,
        "timeout_ms": ENDPOINT_TIMEOUT_MS,
        "contact": authority.contact,
    }


def write_world(world: World, directory: Path, *, broker_jwks_url: str, base_port: int = 5101,
                host: str = "127.0.0.1") -> DemoFiles:
    """Write every authority's CSV and settings, and the registry seed."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    registry_path = directory / "registry.toml"
    files = DemoFiles(directory=directory, registry_path=registry_path)
    entries = []
    for offset, authority in enumerate(world.authorities):
        port = base_port + offset
        url = f"http://{host}:{port}"
        csv_path = directory / f"{authority.id}.csv"
        settings_path = directory / f"{authority.id}.toml"
        write_csv(csv_path, csv_rows(world, authority))
        settings = kit_settings(authority, csv_path=csv_path.resolve(),
                                broker_jwks_url=broker_jwks_url)
        settings_path.write_text(toml_document(settings), encoding="utf-8")
        entries.append(registry_entry(authority, url))
        files.adapters.append(AdapterFiles(authority, port, url, csv_path, settings_path))
    header = (f"# Federator demo registry seed (synthetic authorities, seed {world.seed}).\n"
              f"# Generated; safe to delete.\n\n")
    registry_path.write_text(header + toml_array_of_tables("endpoint", entries),
                             encoding="utf-8")
    return files


__all__ = [
    "CSV_COLUMNS",
    "AdapterFiles",
    "DemoFiles",
    "csv_rows",
    "kit_settings",
    "registry_entry",
    "toml_document",
    "toml_string",
    "toml_value",
    "write_world",
]
