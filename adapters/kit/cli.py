"""``federator-adapter serve --config kit.toml``: run the kit under waitress
(:mod:`adapters.kit.serving`: slow clients hold a socket, never a thread)."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import click
from joserfc.errors import JoseError
from joserfc.jwk import ECKey

from adapters.conformance import TEST_NHS_NUMBER, CheckResult, run_checks
from adapters.kit.app import create_kit_app
from adapters.kit.serving import ServeLimits, make_server
from adapters.kit.settings import SettingsError, load_settings
from adapters.protocol import sign_request


@click.group()
def main() -> None:
    """The Federator adapter kit: answer federator-lookup/1 requests for one authority."""


@main.command()
@click.option("--config", "config_path", required=True,
              type=click.Path(exists=True, dir_okay=False), help="The kit's TOML settings.")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="The address to listen on (put a reverse proxy in front: see README).")
@click.option("--port", default=8080, show_default=True, type=int)
@click.option("--threads", default=ServeLimits.threads, show_default=True,
              type=click.IntRange(min=1), help="Threads answering complete requests.")
@click.option("--connection-limit", default=ServeLimits.connection_limit, show_default=True,
              type=click.IntRange(min=1), help="Connections open at once.")
@click.option("--request-timeout", "request_timeout_s", default=ServeLimits.request_timeout_s,
              show_default=True, type=click.FloatRange(min=0.1),
              help="Seconds a request (headers and body) has to arrive from its first byte.")
@click.option("--idle-timeout", "idle_timeout_s", default=ServeLimits.idle_timeout_s,
              show_default=True, type=click.FloatRange(min=5),
              help="Seconds an idle keep-alive connection is kept.")
@click.option("--workers", default=None, type=int, hidden=True,
              help="Ignored: the kit runs as one process (it was gunicorn's workers).")
def serve(config_path: str, host: str, port: int, threads: int, connection_limit: int,
          request_timeout_s: float, idle_timeout_s: float, workers: int | None) -> None:
    """Serve the adapter for the authority described in --config."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        settings = load_settings(config_path)
    except SettingsError as e:
        raise click.ClickException(f"{config_path}: {e}") from e
    if workers is not None:
        click.echo("warning: --workers is ignored: the kit is one process (see --threads)",
                   err=True)
    app = create_kit_app(settings)
    server = make_server(app, host, port, max_body_bytes=settings.max_body_bytes,
                         limits=ServeLimits(threads=threads, connection_limit=connection_limit,
                                            request_timeout_s=request_timeout_s,
                                            idle_timeout_s=idle_timeout_s))
    click.echo(f"{settings.name} ({settings.authority_id}) adapter on http://{host}:{port}")
    try:
        server.run()
    finally:
        server.close()


def load_private_key(path: str | Path) -> ECKey:
    """A private ES256 JWK from a JSON file (the broker's key file format)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        key = ECKey.import_key(data)
    except (OSError, ValueError, TypeError, KeyError, JoseError) as e:
        raise click.ClickException(f"--key {path}: not a private EC JWK ({type(e).__name__})"
                                   ) from e
    if not key.is_private:
        raise click.ClickException(f"--key {path}: the key has no private part")
    return key


def report(results: list[CheckResult], as_json: bool) -> None:
    """Print the checks; exit 1 when any failed."""
    if as_json:
        click.echo(json.dumps([r.as_dict() for r in results], indent=2))
    else:
        for r in results:
            click.echo(f"{'PASS' if r.passed else 'FAIL'}  {r.name:18} {r.detail}")
        passed = sum(r.passed for r in results)
        click.echo(f"{passed} of {len(results)} checks passed")
    if not all(r.passed for r in results):
        sys.exit(1)


@main.command()
@click.argument("url")
@click.option("--audience", required=True,
              help="The authority id the endpoint answers for (the token's aud).")
@click.option("--key", "key_path", required=True, type=click.Path(exists=True, dir_okay=False),
              help="A private ES256 JWK whose public half the adapter trusts through its "
                   "jwks_url: the broker's key, or a test key (see README).")
@click.option("--issuer", default="federator", show_default=True,
              help="The iss of the signed requests (the broker id the adapter expects).")
@click.option("--timeout", "timeout_s", default=5.0, show_default=True, type=float,
              help="Seconds the endpoint has to answer.")
@click.option("--nhs-number", default=TEST_NHS_NUMBER, show_default=True,
              help="The test NHS number to look up (999 range).")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
def check(url: str, audience: str, key_path: str, issuer: str, timeout_s: float,
          nhs_number: str, as_json: bool) -> None:
    """Run the federator-lookup/1 conformance checks against the adapter at URL."""
    if not nhs_number.startswith("999"):
        raise click.BadParameter("use a number in the NHS test range (999…)",
                                 param_hint="--nhs-number")
    key = load_private_key(key_path)

    def sign(body: bytes, aud: str) -> str:
        return sign_request(body, key, issuer=issuer, audience=aud)

    report(run_checks(url, sign=sign, audience=audience, timeout_s=timeout_s,
                      test_nhs_number=nhs_number, key=key, issuer=issuer), as_json)
