"""``federator registry add|check|probe`` and ``federator keys init|rotate|secrets``."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from flask import Flask

from federator.config import ConfigError, Settings
from federator.registry.outbound import guarded_client


def add_commands(main: click.Group, registry: click.Group,
                 with_app: Callable[..., Any]) -> None:
    @registry.command("add")
    @click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
    @with_app
    def registry_add(app: Flask, file: Path) -> None:
        """Upsert the endpoints of a TOML file (the seed format) as active; audited.
        Credentials in it are stored encrypted with FEDERATOR_CREDENTIALS_KEY."""
        from federator.registry.service import SeedError

        services = app.extensions["federator"]
        try:
            ids = services.registry.seed(file, services.trail)
        except SeedError as e:
            raise click.ClickException(str(e)) from e
        click.echo(f"added or updated: {', '.join(ids) or 'nothing'}")

    @registry.command("check")
    @click.argument("endpoint_id")
    @click.option("--json", "as_json", is_flag=True)
    @with_app
    def registry_check(app: Flask, endpoint_id: str, as_json: bool) -> None:
        """Run the conformance checks against a registered endpoint; exit 1 if any fails."""
        from federator.registry.conformance import check_and_record

        services = app.extensions["federator"]
        endpoint = services.registry.get(endpoint_id)
        if endpoint is None:
            raise click.ClickException(f"no endpoint {endpoint_id}")
        result = check_and_record(services.registry, services.keys, services.trail, endpoint,
                                  {"actor_id": "system", "actor_role": "operator"})
        passed, results = result["passed"], result["checks"]
        if as_json:
            click.echo(json.dumps({"id": endpoint_id, "passed": passed, "checks": results},
                                  indent=2))
        else:
            for r in results:
                word = "----" if r["passed"] is None else "PASS" if r["passed"] else "FAIL"
                click.echo(f"{word}  {r['name']:18} {r['detail']}")
        if not passed:
            raise SystemExit(1)

    @registry.command("probe")
    @click.option("--every", "every_s", type=click.IntRange(min=5), default=None,
                  help="Keep probing every N seconds (else probe once, for cron).")
    @with_app
    def registry_probe(app: Flask, every_s: int | None) -> None:
        """GET each active or suspended endpoint's /health (FHIR: /metadata) and record it."""
        from federator.registry.health import probe_all

        services = app.extensions["federator"]
        client = guarded_client(services.registry.guard, user_agent="federator-probe")
        while True:
            for r in probe_all(client, services.registry.all(), services.registry.health,
                               services.lookups.breakers):
                click.echo(f"{'ok  ' if r.ok else 'DOWN'}  {r.endpoint_id:20} "
                           f"{r.latency_ms if r.latency_ms is not None else '-':>6} ms  "
                           f"{r.detail}")
            if every_s is None:
                return
            time.sleep(every_s)

    @main.group()
    def keys() -> None:
        """The broker's signing keys."""

    @keys.command("init")
    def keys_init() -> None:
        """Make the first signing key (mode 0600); refuses when a key file exists."""
        from federator.signing import init_ring

        path = _key_path()
        try:
            key = init_ring(path)
        except FileExistsError as e:
            raise click.ClickException(
                f"signing key file {path} already exists: use `federator keys rotate`") from e
        click.echo(f"signing key {key.key.kid} written to {path} (mode 0600)")

    @keys.command("secrets")
    def keys_secrets() -> None:
        """Print fresh FEDERATOR_SECRET_KEY, FEDERATOR_AUDIT_KEY and
        FEDERATOR_CREDENTIALS_KEY as shell `export` lines (store them safely)."""
        from federator.bootstrap import export_lines, fresh_secrets

        click.echo("\n".join(export_lines(fresh_secrets())))

    @keys.command("rotate")
    @click.option("--overlap", "overlap_s", type=click.IntRange(min=0), default=None,
                  help="Seconds the old key stays published (default FEDERATOR_KEY_OVERLAP_S).")
    def keys_rotate(overlap_s: int | None) -> None:
        """Add a new signing key; the old one retires after the overlap."""
        from federator.signing import rotate

        settings = _settings()
        path = _key_path(settings)
        if not path.exists():
            raise click.ClickException(f"signing key file {path} does not exist")
        overlap = settings.key_overlap_s if overlap_s is None else overlap_s
        new = rotate(path, overlap_s=overlap)
        click.echo(f"new signing key {new.key.kid}; older keys retire in {overlap} s")


def _settings() -> Settings:
    try:
        return Settings.from_env()
    except ConfigError as e:
        raise click.ClickException(str(e)) from e


def _key_path(settings: Settings | None = None) -> Path:
    """FEDERATOR_SIGNING_KEY_FILE, else the instance folder's key file. ``keys init``
    reads only these two settings, so it runs before the secrets exist."""
    if settings is None:
        from federator.config import declarations

        by_name = {d.name: d for d in declarations()}
        try:
            explicit = by_name["signing_key_file"].read(os.environ)
            instance = by_name["instance_dir"].read(os.environ)
        except ConfigError as e:
            raise click.ClickException(str(e)) from e
        return explicit or instance / "signing-key.jwk.json"
    return settings.signing_key_file or settings.instance_dir / "signing-key.jwk.json"
