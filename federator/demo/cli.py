"""``federator demo``: the whole federation on loopback, and its helpers."""

from __future__ import annotations

import json
import os
import signal
import threading
from collections.abc import Mapping
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import click

from federator.config import ConfigError, Settings
from federator.demo.model import SLOW_DELAY_MS
from federator.demo.running import NoRunningDemo, read_running, remove_run_file, write_run_file

DEFAULT_PORT = 5000

#: The demo's budgets, roomier than production's defaults (10 lookups a minute per
#: practitioner) so that someone trying things is not refused after a few clicks.
#: A variable set in the environment still wins.
DEMO_LIMITS = {
    "FEDERATOR_LOOKUPS_PER_MINUTE": "120",
    "FEDERATOR_LOOKUPS_PER_DAY": "5000",
    "FEDERATOR_REFUSED_LOOKUPS_PER_MINUTE": "300",
    "FEDERATOR_REFUSED_LOOKUPS_PER_DAY": "5000",
    "FEDERATOR_ORGANISATION_LOOKUPS_PER_MINUTE": "600",
    "FEDERATOR_ORGANISATION_LOOKUPS_PER_DAY": "20000",
}


def demo_environ(environ: Mapping[str, str]) -> dict[str, str]:
    """The environment the demo's settings are read from: development, the demo's
    roomy limits unless the environment sets its own."""
    return {**DEMO_LIMITS, **environ, "FEDERATOR_ENV": "development"}


def _demo_dir() -> Path:
    return Path(os.environ.get("FEDERATOR_INSTANCE_DIR") or "instance") / "demo"


@click.group(invoke_without_command=True)
@click.option("--port", default=DEFAULT_PORT, show_default=True, type=int,
              help="The broker's port; the identity provider takes the next one and the "
                   "authorities consecutive ports from port+101.")
@click.option("--authorities", default=6, show_default=True, type=click.IntRange(3, 9))
@click.option("--with-registry", "with_registry", type=click.Path(exists=True, dir_okay=False),
              help="A registry seed file whose endpoints join the synthetic ones.")
@click.option("--seed", default=2026, show_default=True, type=int)
@click.pass_context
def demo(ctx: click.Context, port: int, authorities: int, with_registry: str | None,
         seed: int) -> None:
    """Run the broker, a development identity provider and synthetic authorities."""
    if ctx.invoked_subcommand is not None:
        return
    from federator.demo.federation import describe, start_federation

    if os.environ.get("FEDERATOR_ENV") == "production":
        raise click.ClickException("the demo cannot run with FEDERATOR_ENV=production")
    try:
        base = Settings.from_env(demo_environ(os.environ))
    except ConfigError as e:
        raise click.ClickException(str(e)) from e
    directory = _demo_dir()
    click.echo(f"Starting the demo in {directory.resolve()} ...")
    fed = start_federation(directory, base=base, seed=seed, authorities=authorities,
                           broker_port=port, idp_port=port + 1, kit_base_port=port + 101,
                           extra_seed=Path(with_registry) if with_registry else None)
    info = describe(fed)
    write_run_file(directory, info)
    _print_banner(info, fed.world, port, fed.settings)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    click.echo("\nStopping ...")
    fed.stop()
    remove_run_file(directory)


def _print_banner(info: dict[str, Any], world: Any, port: int, settings: Settings) -> None:
    echo = click.echo
    echo("")
    echo(f"Broker             {info['broker']}   (API: {info['broker']}/api/v1/lookups, "
         f"OpenAPI: {info['broker']}/api/openapi.json)")
    echo(f"Identity provider  {info['identity_provider']}   (development only)")
    echo(f"Database           {settings.sqlalchemy_url.split('?')[0]}")
    echo(f"Shared state       {'Redis' if settings.redis_url else 'in-process'}")
    echo("\nAuthorities:")
    for a in info["authorities"]:
        note = {"slow": f"  <- slow: answers after {SLOW_DELAY_MS / 1000:g} s",
                "down": "  <- down: nothing listens"}.get(a["behaviour"], "")
        echo(f"  {a['id']:18} {a['url']:24} {a['name']}{note}")
    echo("\nPersonas (password 'demo'): practitioner, practitioner-2, auditor, broker-admin, "
         "authority-admin:<authority id>")
    echo("\nChildren to look up:")
    for child in world.children_for_display(6):
        echo(f"  NHS {child.nhs_number}  {child.given_name} {child.family_name}, born "
             f"{child.date_of_birth.isoformat()}, {', '.join(child.postcodes)}  "
             f"- {world.label(child)}")
    down = {a["id"] for a in info["authorities"] if a["behaviour"] == "down"}
    child = next((c for c in world.children_for_display(12) if down & set(c.known_to)),
                 world.children_for_display(1)[0])
    example = json.dumps({
        "child": {"nhs_number": child.nhs_number, "postcodes": list(child.postcodes)},
        "purpose": "Assessment under section 17: finding services already involved",
        "basis": {"type": "consent", "given_by": "parent",
                  "given_on": (date.today() - timedelta(days=1)).isoformat(),
                  "reference": "CASE-123"},
        "include_past": True,
    })
    echo(f"""
Try it (one authority is down, so the answer says "complete": false):
  TOKEN=$(federator demo token --persona practitioner)   (finds this demo by itself)
  curl -s -X POST {info['broker']}/api/v1/lookups -H "Authorization: Bearer $TOKEN" \\
    -H 'Content-Type: application/json' -d '{example}'

Press Ctrl-C to stop everything.""")


@demo.command("token")
@click.option("--persona", default="practitioner", show_default=True,
              help="practitioner | practitioner-2 | auditor | broker-admin | "
                   "authority-admin:<authority id>")
@click.option("--port", default=None, type=int,
              help="The demo broker's port (the identity provider is on the next). "
                   "Without it (or --idp), the running demo's own run file says where.")
@click.option("--idp", "idp_url", default=None, help="The identity provider's URL.")
def token(persona: str, port: int | None, idp_url: str | None) -> None:
    """Print a bearer token from the running demo's identity provider."""
    import requests

    from federator.demo.idp import fetch_token

    if idp_url:
        url = idp_url
    elif port is not None:
        url = f"http://127.0.0.1:{port + 1}"
    else:
        try:
            url = read_running(_demo_dir())["identity_provider"]
        except NoRunningDemo as e:
            raise click.ClickException(str(e)) from e
    try:
        click.echo(fetch_token(url, persona))
    except requests.RequestException as e:
        raise click.ClickException(
            f"cannot reach the identity provider at {url}: is `federator demo` running?") from e
    except RuntimeError as e:
        raise click.ClickException(str(e)) from e


@demo.command("children")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--seed", default=2026, show_default=True, type=int)
@click.option("--authorities", default=6, show_default=True, type=click.IntRange(3, 9))
def children(as_json: bool, seed: int, authorities: int) -> None:
    """The synthetic children and which authorities know them."""
    from federator.demo.world import generate_world

    world = generate_world(seed=seed, authorities=authorities)
    summary = world.children_summary()
    if as_json:
        click.echo(json.dumps(summary, indent=2, default=str))
        return
    for child in summary:
        click.echo(json.dumps(child, default=str))


@demo.command("mail")
@click.option("--authority", default=None, help="Only this authority's mail.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def mail(authority: str | None, as_json: bool) -> None:
    """What each authority's workers were told: the notifications the demo's
    SMTP server received (instance/demo/mail)."""
    from federator.demo.mail import read_mailbox

    directory = _demo_dir() / "mail"
    messages = read_mailbox(directory)
    by_authority: dict[str, list[dict[str, str]]] = {}
    for message in messages:
        to = str(message["To"] or "")
        # team@<authority>.demo.invalid, or a worker's own address
        owner = to.split("@", 1)[1].removesuffix(".demo.invalid") if "@" in to else to
        if authority and owner != authority:
            continue
        body = message.get_body(preferencelist=("plain",))
        by_authority.setdefault(owner, []).append({
            "to": to, "subject": str(message["Subject"] or ""), "date": str(message["Date"] or ""),
            "body": body.get_content() if body is not None else ""})
    if as_json:
        click.echo(json.dumps(by_authority, indent=2))
        return
    if not by_authority:
        click.echo(f"No notifications yet in {directory.resolve()}: run `federator demo` "
                   "and make a lookup that matches a child.")
        return
    for owner, items in sorted(by_authority.items()):
        click.echo(f"== {owner}: {len(items)} message{'s' if len(items) != 1 else ''}")
        for item in items:
            click.echo(f"-- To: {item['to']}\n   Subject: {item['subject']}\n   "
                       f"Date: {item['date']}\n")
            click.echo("   " + item["body"].rstrip().replace("\n", "\n   ") + "\n")
