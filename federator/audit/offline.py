"""Verifying the trail with nothing secret: ``federator audit verify`` with the
broker's public keys (``--keys``), checkpoints held outside the database
(``--checkpoint``), and an export file with no database at all (``--export``).

Only ``FEDERATOR_DATABASE_URL`` (or ``FEDERATOR_INSTANCE_DIR`` for the SQLite
file) is read, never a secret, in any ``FEDERATOR_ENV``; without ``--keys`` the
public halves of the broker's key ring file are used when it is at hand.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from federator.audit.chain import GENESIS, Verdict, canonical
from federator.audit.checkpoints import BadCheckpoint, open_checkpoint, read_checkpoint
from federator.audit.export import body_of
from federator.audit.redaction import texts_of_view
from federator.audit.verification import StoredCheckpoint, verify_trail
from federator.config import Settings, declarations

#: What the verifier reads from the environment: never a secret.
READ = ("env", "instance_dir", "database_url", "signing_key_file", "broker_id", "ca_file")
KEYS_HINT = ("pass --keys with the broker's keys: https://BROKER/.well-known/federator-keys.json "
             "(every key it ever signed with), or a copy of it")
_PRIVATE = {"d", "p", "q", "dp", "dq", "qi", "k"}


class VerifyError(ValueError):
    """The verification cannot start; the message says what to do."""


def public_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """The few settings verification needs, without the checks for secrets."""
    env = os.environ if environ is None else environ
    return Settings(**{d.name: d.read(env) for d in declarations() if d.name in READ})


def load_keys(source: str | None, settings: Settings) -> dict[str, Any]:
    """A JWKS from a file or an http(s) URL; without one, the public halves of the
    key ring file (``FEDERATOR_SIGNING_KEY_FILE``) with each key's window."""
    if source is None:
        path = settings.signing_key_file or settings.instance_dir / "signing-key.jwk.json"
        if not Path(path).exists():
            raise VerifyError(f"no public keys: {KEYS_HINT}")
        from federator.signing import history_document, read_ring

        try:
            return history_document(read_ring(Path(path)), 0)
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise VerifyError(f"the key file {path} is not readable ({type(e).__name__}): "
                              f"{KEYS_HINT}") from e
    if source.startswith(("https://", "http://")):
        import requests

        try:
            response = requests.get(source, timeout=10, headers={"Accept": "application/json"},
                                    verify=settings.ca_bundle or True)
            response.raise_for_status()
            data = response.json()
        except (requests.RequestException, ValueError) as e:
            raise VerifyError(f"--keys {source}: not fetched ({type(e).__name__})") from e
    else:
        try:
            data = json.loads(Path(source).read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise VerifyError(f"--keys {source}: not a readable JSON file "
                              f"({type(e).__name__})") from e
    if not isinstance(data, dict) or not isinstance(data.get("keys"), list):
        raise VerifyError(f"--keys {source}: not a JWKS (a JSON object with \"keys\")")
    return {"keys": [{m: v for m, v in k.items() if m not in _PRIVATE}
                     for k in data["keys"] if isinstance(k, dict)]}


def load_held(paths: Sequence[str], jwks: Mapping[str, Any]) -> list[StoredCheckpoint]:
    """Checkpoints from files (export's ``.checkpoint.json``, ``witness show``'s
    JSON, a bare JWS), each signature and key window checked now."""
    held = []
    for path in paths:
        try:
            text = Path(path).read_text(encoding="utf-8")
            token = read_checkpoint(text)
        except (OSError, ValueError) as e:
            raise VerifyError(f"--checkpoint {path}: {e}") from e
        try:
            checkpoint = open_checkpoint(token, jwks)
        except BadCheckpoint as e:
            raise VerifyError(f"--checkpoint {path}: {e}") from e
        frontier = _frontier(text)
        held.append(StoredCheckpoint(checkpoint.tree_size, token, frontier, source=path))
    return held


def _frontier(text: str) -> tuple[str, ...]:
    """A witness's frontier beside its checkpoint, to narrow where a trail differs."""
    from adapters.witness import checked_frontier
    from federator.audit.checkpoints import Checkpoint

    try:
        data = json.loads(text)
        cp = Checkpoint(**{k: data[k] for k in ("log", "tree_size", "root_hash", "head_hash",
                                                "at")})
        return checked_frontier(cp, data.get("frontier") or [])
    except (ValueError, KeyError, TypeError, AttributeError):
        return ()


def check_database(engine: Any) -> None:
    """Refuse, with what to do, a database the trail's tables are not in."""
    from sqlalchemy import inspect
    from sqlalchemy.exc import SQLAlchemyError

    try:
        tables = set(inspect(engine).get_table_names())
    except SQLAlchemyError as e:
        raise VerifyError(f"the database cannot be read ({type(e).__name__}): check "
                          "FEDERATOR_DATABASE_URL") from e
    if not {"audit_records", "audit_checkpoints"} <= tables:
        raise VerifyError("the database holds no audit trail: run `federator db upgrade` "
                          "first (or check FEDERATOR_DATABASE_URL)")
    columns = {c["name"] for c in inspect(engine).get_columns("audit_records")}
    if not {"texts", "leaf"} <= columns:
        raise VerifyError("the database's trail predates retention (migration "
                          "0011_audit_retention): run `federator db upgrade` first")


def verify_database(settings: Settings, *, start: int, end: int | None,
                    jwks: Mapping[str, Any], held: Sequence[StoredCheckpoint]) -> Verdict:
    from sqlalchemy.exc import SQLAlchemyError

    from federator.audit.trail import AuditTrail
    from federator.storage import make_engine

    outside = [c for c in held if c.tree_size < start or (end is not None and c.tree_size > end)]
    if outside:  # a walk that never reaches it cannot say the trail contains it
        raise VerifyError(f"{outside[0].named()} lies outside --from/--to: give a range "
                          "that reaches it, or verify the whole trail")
    url = settings.sqlalchemy_url
    if url.startswith("sqlite:///") and not Path(url[len("sqlite:///"):]).exists():
        raise VerifyError(f"there is no database at {url[len('sqlite:///'):]}: run "
                          "`federator db upgrade` first (or set FEDERATOR_DATABASE_URL)")
    engine = make_engine(url)
    try:
        check_database(engine)
        try:
            return AuditTrail(engine, checkpoint_every=0).verify(
                start=start, end=end, jwks=jwks, held=held)
        except SQLAlchemyError as e:
            raise VerifyError(f"the trail cannot be read ({type(e).__name__})") from e
    finally:
        engine.dispose()


# -- an export file, no database --------------------------------------------------------


def export_rows(path: str) -> Iterator[dict[str, Any]]:
    """The rows of ``federator audit export`` (JSON lines or CSV), as verify reads
    them from the database: seq, body (canonical), prev_hash, hash."""
    text = Path(path).read_text(encoding="utf-8")
    if text.startswith("seq,"):
        for row in csv.DictReader(io.StringIO(text)):
            yield {"seq": int(row["seq"]), "body": row["body"], "prev_hash": row["prev_hash"],
                   "hash": row["hash"]}
        return
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        record = json.loads(line)
        if not isinstance(record, dict):
            raise ValueError(f"line {number} is not a JSON object")
        if record.get("pruned") is True:  # its body gone, its leaf hash kept
            yield {"seq": int(record["seq"]), "body": "", "leaf": record.get("leaf"),
                   "prev_hash": str(record.get("prev_hash")), "hash": str(record.get("hash"))}
            continue
        yield {"seq": int(record["seq"]), "body": canonical(body_of(record)),
               "texts": texts_of_view(record),
               "prev_hash": str(record.get("prev_hash")), "hash": str(record.get("hash"))}


def verify_export(path: str, jwks: Mapping[str, Any], held: Sequence[StoredCheckpoint]
                  ) -> Verdict:
    """The export's chain, and each checkpoint whose record it holds (the Merkle
    root too when it starts at record 1). A checkpoint beyond its last record fails:
    export up to the checkpoint's day to check it offline."""
    if not held:
        raise VerifyError("--export needs --checkpoint (the export's FILE.checkpoint.json)")
    try:
        rows = list(export_rows(path))
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise VerifyError(f"--export {path}: not an export file ({type(e).__name__}: "
                          f"{e})") from e
    if not rows:
        raise VerifyError(f"--export {path}: no records")
    first = rows[0]
    early = [c for c in held if c.tree_size < first["seq"]]
    if early:
        raise VerifyError(f"{early[0].named()} ends before the export's first record "
                          f"({first['seq']}): it cannot be checked against this export")
    # an export ends before the trail's head: a pruned record whose audit.pruned
    # record is not in the file is not held against it
    return verify_trail(iter(rows), held, jwks=jwks, start_seq=first["seq"],
                        start_prev=first["prev_hash"] if first["seq"] > 1 else GENESIS,
                        complete=False)
