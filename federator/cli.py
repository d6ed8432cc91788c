"""The ``federator`` command: database, audit, registry and the demo."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from typing import Any

import click
from flask import Flask

from federator.config import ConfigError, Settings


def with_app(command: Callable[..., Any]) -> Callable[..., Any]:
    """Build the app from the environment and run ``command(app, ...)`` in its context."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from federator import create_app

        try:
            app = create_app(Settings.from_env())
        except ConfigError as e:
            raise click.ClickException(str(e)) from e
        with app.app_context():
            return command(app, *args, **kwargs)

    return wrapper


@click.group(help="Federator: who is working, or has worked, with this child?")
def main() -> None:
    pass


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
    upgrade(make_engine(settings.sqlalchemy_url, settings.instance_dir))
    click.echo("database is up to date")


@main.group()
def audit() -> None:
    """The audit trail."""


@audit.command("verify")
@click.option("--from", "start", type=int, default=1, show_default=True)
@click.option("--to", "end", type=int, default=None)
@with_app
def audit_verify(app: Flask, start: int, end: int | None) -> None:
    """Check every record's hash and link; exit 1 at the first broken one."""
    verdict = app.extensions["federator"].trail.verify(start=start, end=end)
    if verdict.ok:
        click.echo(f"OK: {verdict.count} records verified")
        return
    click.echo(f"BROKEN at record {verdict.first_bad_seq}: {verdict.reason} "
               f"({verdict.count} records verified before it)", err=True)
    sys.exit(1)


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


def _add_demo() -> None:
    from federator.demo.cli import demo

    main.add_command(demo)


_add_demo()
