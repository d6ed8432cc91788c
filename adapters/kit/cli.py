"""``federator-adapter serve --config kit.toml``: run the kit under gunicorn."""

from __future__ import annotations

import logging
from typing import Any

import click
from flask import Flask
from gunicorn.app.base import BaseApplication

from adapters.kit.app import create_kit_app
from adapters.kit.settings import SettingsError, load_settings


class KitServer(BaseApplication):  # type: ignore[misc]
    """gunicorn, configured in code (gthread workers, 8 threads each)."""

    def __init__(self, app: Flask, options: dict[str, Any]) -> None:
        self.application = app
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        assert self.cfg is not None
        for key, value in self.options.items():
            if key in self.cfg.settings and value is not None:
                self.cfg.set(key.lower(), value)

    def load(self) -> Flask:
        return self.application


def server_options(host: str, port: int, workers: int) -> dict[str, Any]:
    return {
        "bind": f"{host}:{port}",
        "workers": workers,
        "worker_class": "gthread",
        "threads": 8,
        "timeout": 30,
        "accesslog": None,  # request lines would carry nothing useful and no personal data
        "errorlog": "-",
    }


@click.group()
def main() -> None:
    """The Federator adapter kit: answer federator-lookup/1 requests for one authority."""


@main.command()
@click.option("--config", "config_path", required=True,
              type=click.Path(exists=True, dir_okay=False), help="The kit's TOML settings.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, type=int)
@click.option("--workers", default=1, show_default=True, type=click.IntRange(min=1))
def serve(config_path: str, host: str, port: int, workers: int) -> None:
    """Serve the adapter for the authority described in --config."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        settings = load_settings(config_path)
    except SettingsError as e:
        raise click.ClickException(f"{config_path}: {e}") from e
    if workers > 1 and not settings.redis_url:
        click.echo("warning: several workers without redis_url: replayed requests may be "
                   "accepted by another worker", err=True)
    app = create_kit_app(settings)
    click.echo(f"{settings.name} ({settings.authority_id}) adapter on http://{host}:{port}")
    KitServer(app, server_options(host, port, workers)).run()
