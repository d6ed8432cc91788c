"""The ``federator`` command: database, audit, registry, settings and the demo."""

from __future__ import annotations

import contextlib
import functools
import json
import sys
from collections.abc import Callable, Iterator
from typing import Any

import click
from flask import Flask

from federator.config import ConfigError, Settings
from federator.names import AUDIT_EXPORTED


def with_app(command: Callable[..., Any]) -> Callable[..., Any]:
    """Build the app from the environment and run ``command(app, ...)`` in its context."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from federator import create_app

        try:
            app = create_app(Settings.from_env())
        except ConfigError as e:
            raise click.ClickException(str(e)) from e
        try:
            with app.app_context():
                return command(app, *args, **kwargs)
        finally:  # the pooled connections (on PostgreSQL, server processes) closed now
            app.extensions["federator"].engine.dispose()

    return wrapper


@click.group(help="Federator: who is working, or has worked, with this child?")
def main() -> None:
    pass


@main.command()
@click.option("--bind", default=None, help="host:port (default from config/gunicorn.conf.py)")
@click.option("--workers", default=None, type=click.IntRange(min=1))
@click.option("--allow-development", is_flag=True,
              help="Serve with FEDERATOR_ENV=development (generated secrets, plain http, "
                   "loopback endpoints): for tests and benchmarks on one machine only.")
def serve(bind: str | None, workers: int | None, allow_development: bool) -> None:
    """Run the broker under gunicorn; refuses development settings in production."""
    from federator import create_app
    from federator.serve import BrokerServer, development_refused, preflight

    try:
        settings = Settings.from_env()
    except ConfigError as e:
        raise click.ClickException(str(e)) from e
    refusal = development_refused(settings, allowed=allow_development)
    if refusal:
        raise click.ClickException(refusal)
    server = BrokerServer({"bind": bind, "workers": workers})
    app = create_app(settings)
    problems = preflight(settings, workers=server.cfg.workers,
                         endpoints=app.extensions["federator"].registry.all())
    app.extensions["federator"].engine.dispose()
    if problems:
        raise click.ClickException("refusing to serve: " + "; ".join(problems))
    server.run()


@main.group()
def db() -> None:
    """The broker's database."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Create or migrate the tables to the latest version."""
    from federator.storage import make_engine, upgrade

    try:
        settings = Settings.from_env()
    except ConfigError as e:
        raise click.ClickException(str(e)) from e
    engine = make_engine(settings.sqlalchemy_url, settings.instance_dir)
    try:
        upgrade(engine)
    finally:
        engine.dispose()
    click.echo("database is up to date")


@main.group()
def audit() -> None:
    """The audit trail."""


@audit.command("verify")
@click.option("--from", "start", type=int, default=1, show_default=True)
@click.option("--to", "end", type=int, default=None)
@click.option("--keys", "keys_source", default=None, metavar="JWKS_FILE_OR_URL",
              help="The broker's public keys, every one it ever signed with "
                   "(/.well-known/federator-keys.json). Default: the public halves of "
                   "FEDERATOR_SIGNING_KEY_FILE.")
@click.option("--checkpoint", "checkpoints", multiple=True,
              type=click.Path(exists=True, dir_okay=False),
              help="A signed checkpoint held outside the database (a kit's `witness show`, "
                   "an export's FILE.checkpoint.json, an auditor's copy); repeatable. The "
                   "trail must contain each one's tree.")
@click.option("--export", "export_file", type=click.Path(exists=True, dir_okay=False),
              default=None, help="Check this export file against --checkpoint, with no "
                                 "database at all.")
def audit_verify(start: int, end: int | None, keys_source: str | None,
                 checkpoints: tuple[str, ...], export_file: str | None) -> None:
    """Check every record's hash and link, and every signed checkpoint, the trail's
    own and those given; exit 1 at the first broken one. Needs no secret: only
    FEDERATOR_DATABASE_URL and the broker's public keys."""
    from federator.audit import offline

    try:
        settings = offline.public_settings()
        jwks = offline.load_keys(keys_source, settings)
        held = offline.load_held(checkpoints, jwks)
        verdict = (offline.verify_export(export_file, jwks, held) if export_file else
                   offline.verify_database(settings, start=start, end=end, jwks=jwks,
                                           held=held))
    except (ConfigError, offline.VerifyError) as e:
        raise click.ClickException(str(e)) from e
    if verdict.ok:
        from federator.audit.retention_cli import pruned_words

        pruned = pruned_words(verdict.pruned, verdict.count, start)
        click.echo(f"OK: {verdict.count} records verified" + (
            f", {len(held)} held checkpoint{'s' if len(held) != 1 else ''} contained"
            if held else "") + (f": {pruned}" if pruned else ""))
        return
    click.echo(f"BROKEN at record {verdict.first_bad_seq}: {verdict.reason} "
               f"({verdict.count} records verified before it)", err=True)
    sys.exit(1)


@audit.command("export")
@click.option("--from", "start", type=click.DateTime(["%Y-%m-%d"]), required=True,
              help="First day (UTC), inclusive.")
@click.option("--to", "end", type=click.DateTime(["%Y-%m-%d"]), required=True,
              help="Last day (UTC), inclusive.")
@click.option("--format", "fmt", type=click.Choice(["csv", "jsonl"]), default="jsonl",
              show_default=True)
@click.option("--output", type=click.Path(dir_okay=False), default=None,
              help="File to write (default: standard output).")
@click.option("--checkpoint", "checkpoint_path", type=click.Path(dir_okay=False), default=None,
              help="Where to write the signed checkpoint (default: OUTPUT.checkpoint.json, "
                   "or standard error).")
def audit_export(start: Any, end: Any, fmt: str, output: str | None,
                 checkpoint_path: str | None) -> None:
    """Records between two dates, with the signed checkpoint that covers them."""
    if start.date() > end.date():
        raise click.BadParameter("must not be after --to", param_hint="--from")
    with _audit_trail() as trail:
        _export(trail, start.date(), end.date(), fmt, output, checkpoint_path)


@contextlib.contextmanager
def _audit_trail() -> Iterator[Any]:
    from federator.audit.setup import open_trail

    try:
        with open_trail(Settings.from_env()) as trail:
            yield trail
    except ConfigError as e:
        raise click.ClickException(str(e)) from e


def _export(trail: Any, start: Any, end: Any, fmt: str, output: str | None,
            checkpoint_path: str | None) -> None:
    import getpass

    from federator.audit.export import lines
    from federator.audit.queries import RecordFilter, iter_records

    trail.append(AUDIT_EXPORTED, actor_id=f"cli:{getpass.getuser()}", actor_role="operator",
                 query={"from": start.isoformat(), "to": end.isoformat(), "format": fmt})
    checkpoint = trail.checkpoint() or trail.latest()
    f = RecordFilter(start=start, end=end,
                     seq_to=checkpoint.tree_size if checkpoint else None)
    count = 0

    def counted() -> Any:
        nonlocal count
        for record in iter_records(trail.engine, f):
            count += 1
            yield record

    with click.open_file(output or "-", "w", encoding="utf-8") as out:
        for line in lines(counted(), fmt):
            out.write(line)
    signed = json.dumps(checkpoint.public() if checkpoint else None, indent=2)
    target = checkpoint_path or (f"{output}.checkpoint.json" if output else None)
    if target:
        with open(target, "w", encoding="utf-8") as handle:
            handle.write(signed + "\n")
    else:
        click.echo(signed, err=True)
    click.echo(f"exported {count} records", err=True)


@main.group()
def registry() -> None:
    """The endpoint registry."""


@registry.command("list")
@click.option("--json", "as_json", is_flag=True)
@with_app
def registry_list(app: Flask, as_json: bool) -> None:
    """List the registered endpoints."""
    endpoints = app.extensions["federator"].registry.all()
    if as_json:
        click.echo(json.dumps([e.__dict__ for e in endpoints], indent=2))
        return
    for e in endpoints:
        click.echo(f"{e.id:20} {e.status:10} {e.protocol:20} {','.join(e.coverage):30} {e.url}")


@registry.command("smart-key")
@click.argument("endpoint_id")
@click.option("--alg", type=click.Choice(["ES384", "RS384"]), default="ES384", show_default=True)
@click.option("--new", "new_key", is_flag=True,
              help="Rotate: publish a new key next to the stored one, which keeps signing "
                   "for the overlap (then the new key signs, alone).")
@click.option("--overlap", "overlap_s", type=click.IntRange(min=0), default=None,
              help="With --new: seconds the old key keeps signing and stays published "
                   "(default FEDERATOR_KEY_OVERLAP_S; 0 replaces it at once).")
@click.option("--retire", is_flag=True,
              help="End the overlap now: the new key signs, the old one is no longer "
                   "published (once the authority has registered the new JWKS).")
@click.option("--client-id", default=None, help="The client id the authority gave the broker.")
@click.option("--token-url", default=None,
              help="The token endpoint (default: from .well-known/smart-configuration).")
@with_app
def registry_smart_key(app: Flask, endpoint_id: str, alg: str, new_key: bool,
                       overlap_s: int | None, retire: bool, client_id: str | None,
                       token_url: str | None) -> None:
    """Print the public JWKS of a FHIR endpoint's SMART Backend Services key, for
    the authority to register with its FHIR server. When the endpoint has no
    private key yet, make one and store it encrypted with its credentials
    (audited; the endpoint goes back to pending approval). With --new, rotate
    with overlap (the endpoint keeps its status); --retire ends the overlap. The
    private key is never printed."""
    import getpass
    import time

    from adapters.smart_auth import key_update, retire_old_key, stage_new_key
    from federator.registry.secrets import CredentialsKeyError
    from federator.registry.service import Refused
    from federator.registry.urlguard import UnsafeURL

    if new_key and retire:
        raise click.UsageError("--new and --retire do not go together")
    services = app.extensions["federator"]
    endpoint = services.registry.get(endpoint_id)
    if endpoint is None:
        raise click.ClickException(f"no endpoint {endpoint_id}")
    if endpoint.protocol != "fhir-r4":
        raise click.ClickException(f"{endpoint_id} is {endpoint.protocol}, not fhir-r4")
    try:
        if token_url:
            services.registry.guard.check(token_url)
        creds = services.registry.credentials(endpoint_id)
    except (UnsafeURL, CredentialsKeyError) as e:
        raise click.ClickException(str(e)) from e
    now = time.time()
    given = {k: v for k, v in {"client_id": client_id, "token_url": token_url}.items() if v}
    rotating = retire or (new_key and bool(creds.get("private_key")))
    if retire:
        updated = retire_old_key(creds)
        if updated is None:
            raise click.ClickException(f"{endpoint_id} has no new key in overlap to retire to")
        updated.update(given)
    elif rotating:
        overlap = services.settings.key_overlap_s if overlap_s is None else overlap_s
        updated = {**stage_new_key(creds, alg=alg, overlap_s=overlap, now=now), **given}
        rotating = overlap > 0  # no overlap: the signing key changes now, approval again
    else:
        updated = key_update(creds, new_key=new_key, alg=alg, **given)
    if updated is None:
        click.echo(_jwks_text(creds, now))
        return
    actor = {"actor_id": f"cli:{getpass.getuser()}", "actor_role": "operator"}
    try:
        shown = services.registry.change(endpoint_id, {"credentials": updated}, actor,
                                         services.trail, reapprove=not rotating)
    except (Refused, CredentialsKeyError) as e:
        raise click.ClickException(getattr(e, "message", str(e))) from e
    click.echo(_jwks_text(updated, now))
    if updated.get("next_from"):
        click.echo(f"New key published; the old key signs until {_utc(updated['next_from'])} "
                   "(or --retire): have the authority register this JWKS before then.",
                   err=True)
    if not updated.get("client_id"):
        click.echo("No client_id yet: set it with --client-id when the authority gives one.",
                   err=True)
    click.echo(f"{endpoint_id} credentials updated; status {shown['status']}", err=True)


def _utc(epoch: str) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(float(epoch), UTC).strftime("%Y-%m-%d %H:%M UTC")


def _jwks_text(credentials: dict[str, str], now: float) -> str:
    from adapters.smart_auth import SmartKeyError, credentials_jwks

    try:
        return json.dumps(credentials_jwks(credentials, now), indent=2)
    except SmartKeyError as e:
        raise click.ClickException(f"the stored private key cannot be used: {e}") from e


@main.group()
def adapter() -> None:
    """Adapters at authorities."""


@adapter.command("check")
@click.argument("url")
@click.option("--audience", required=True, help="The authority id the endpoint answers for.")
@click.option("--timeout", "timeout_s", default=5.0, show_default=True, type=float)
@click.option("--json", "as_json", is_flag=True)
def adapter_check(url: str, audience: str, timeout_s: float, as_json: bool) -> None:
    """Conformance checks against URL, signed with this broker's own key
    (FEDERATOR_SIGNING_KEY_FILE), as the adapter will see real lookups."""
    from adapters.conformance import run_checks
    from adapters.kit.cli import report
    from federator.signing import BrokerKeys

    try:
        settings = Settings.from_env()
        key_file = settings.signing_key_file or settings.instance_dir / "signing-key.jwk.json"
        keys = BrokerKeys.load(key_file, settings.broker_id, create=False)
    except (ConfigError, FileNotFoundError) as e:
        raise click.ClickException(str(e)) from e
    report(run_checks(url, sign=keys.sign, audience=audience, timeout_s=timeout_s,
                      key=keys.key, issuer=keys.issuer), as_json)


@main.group("settings")
def settings_group() -> None:
    """The broker's settings (FEDERATOR_* environment variables)."""


@settings_group.command("docs")
@click.option("--output", type=click.Path(dir_okay=False), default=None,
              help="File to write, e.g. docs/settings.md (default: standard output).")
def settings_docs(output: str | None) -> None:
    """Every setting, its meaning, value and default, as Markdown."""
    from federator.settings_doc import render

    if output is None:
        click.echo(render(), nl=False)
        return
    with open(output, "w", encoding="utf-8", newline="\n") as handle:
        handle.write(render())


def _add_retention_commands() -> None:
    from federator.audit.retention_cli import add_commands

    add_commands(audit, _audit_trail)


_add_retention_commands()


def _add_registry_commands() -> None:
    from federator.registry.commands import add_commands

    add_commands(main, registry, with_app)


_add_registry_commands()


def _add_demo() -> None:
    from federator.demo.cli import demo

    main.add_command(demo)


_add_demo()
