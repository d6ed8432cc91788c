"""``federator audit prune`` and ``federator audit redact`` (added to the ``audit``
group by ``federator.cli``), and how ``verify`` words a pruned range."""

from __future__ import annotations

import getpass
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import click
from sqlalchemy.exc import SQLAlchemyError

from federator.audit.redaction import SEALED_FIELDS


def _n(value: int) -> str:
    return f"{value:,}"


def pruned_words(pruned: Sequence[Mapping[str, Any]], count: int, start: int = 1) -> str:
    """``records 1–5,000 pruned on 2026-…, by cli:ops; 5,001–5,210 verified``."""
    if not pruned:
        return ""
    span = pruned[0]
    prunes = span.get("prunes") or []
    when = "; ".join(f"{_n(p['first'])}–{_n(p['last'])} on {p['on']} by {p['by']}"
                     for p in prunes)
    words = f"records {_n(span['first'])}–{_n(span['last'])} pruned"
    if when:
        words += f" ({when})"
    last = start + count - 1
    if span["last"] < last:
        words += f"; {_n(span['last'] + 1)}–{_n(last)} verified in full"
    return words


def _actor() -> dict[str, str]:
    return {"actor_id": f"cli:{getpass.getuser()}", "actor_role": "operator"}


def _refusal(errors: Mapping[str, str]) -> click.ClickException:
    return click.ClickException("\n".join(f"{k}: {v}" for k, v in errors.items()))


def add_commands(audit: click.Group,
                 open_trail: Callable[[], AbstractContextManager[Any]]) -> None:
    @audit.command("prune")
    def audit_prune() -> None:
        """Empty the bodies of records older than FEDERATOR_AUDIT_RETENTION_DAYS (audited
        as audit.pruned); their hashes stay, so `audit verify` still passes. Run it as
        the role that owns the audit tables."""
        from federator.audit.retention import RetentionError, prune
        from federator.config import Settings

        with _guarded(open_trail) as trail:
            try:
                done = prune(trail, days=Settings.from_env().audit_retention_days,
                             actor=_actor())
            except RetentionError as e:
                raise _refusal(e.errors) from e
        if done is None:
            click.echo("nothing to prune: no record is older than the retention period "
                       "and covered by a signed checkpoint")
            return
        click.echo(f"pruned records {_n(done.first)}–{_n(done.last)} ({_n(done.count)}, "
                   f"written before {done.before}); recorded as record {done.record}")

    @audit.command("redact")
    @click.argument("seq", type=int)
    @click.argument("field", type=click.Choice(SEALED_FIELDS), metavar="FIELD")
    @click.option("--reason", required=True, help="Why (kept in the audit.redacted record).")
    def audit_redact(seq: int, field: str, reason: str) -> None:
        """Redact the free text FIELD of record SEQ (audited as audit.redacted): the
        text and its salt go, its salted hash stays, so `audit verify` still passes."""
        from federator.audit.retention import RetentionError, redact

        with _guarded(open_trail) as trail:
            try:
                done = redact(trail, seq, field, reason, _actor())
            except RetentionError as e:
                raise _refusal(e.errors) from e
        click.echo(f"redacted the {field} of record {seq}; recorded as record "
                   f"{done['redaction']}")


@contextmanager
def _guarded(open_trail: Callable[[], AbstractContextManager[Any]]) -> Iterator[Any]:
    """The trail, with a database that cannot be read or written said plainly."""
    from federator.audit.offline import VerifyError, check_database
    from federator.audit.trail import AuditUnavailable

    with open_trail() as trail:
        try:
            check_database(trail.engine)
        except VerifyError as e:
            raise click.ClickException(str(e)) from e
        try:
            yield trail
        except (SQLAlchemyError, AuditUnavailable) as e:
            raise click.ClickException(
                f"the trail cannot be written ({type(e).__name__}): check "
                "FEDERATOR_DATABASE_URL and that `federator db upgrade` was run") from e
