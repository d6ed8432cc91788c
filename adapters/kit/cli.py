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
from adapters.kit.app import create_kit_app, kit_model, make_source
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
    from adapters.kit.sources import SourceError
    try:
        app = create_kit_app(settings)
    except (SettingsError, SourceError) as e:  # read only at start: the Notify key, the source
        raise click.ClickException(f"{config_path}: {e}") from e
    server = make_server(app, host, port, max_body_bytes=settings.max_body_bytes,
                         limits=ServeLimits(threads=threads, connection_limit=connection_limit,
                                            request_timeout_s=request_timeout_s,
                                            idle_timeout_s=idle_timeout_s))
    click.echo(f"{settings.name} ({settings.authority_id}) adapter on http://{host}:{port}")
    try:
        server.run()
    finally:
        server.close()


@main.command()
@click.option("--config", "config_path", required=True,
              type=click.Path(exists=True, dir_okay=False), help="The kit's TOML settings.")
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False),
              help="Where to write the m/u file (point match_model_path at it).")
@click.option("--em", is_flag=True,
              help="Also estimate m by EM over pairs within the records (only worth it when "
                   "the records hold duplicates of one child); default: documented m.")
@click.option("--pairs", default=200_000, show_default=True, type=click.IntRange(min=1000),
              help="Random pairs of records to estimate u from.")
def estimate(config_path: str, out_path: str, em: bool, pairs: int) -> None:
    """Estimate the matching model's m/u values on the authority's own records."""
    from adapters.kit.estimate import estimate as run_estimate
    from adapters.kit.matching import index_of
    from adapters.kit.model import ModelError, model_from_mapping
    from adapters.kit.sources import SourceError

    try:
        settings = load_settings(config_path)
        records = make_source(settings).records()
    except (SettingsError, SourceError) as e:
        raise click.ClickException(f"{config_path}: {e}") from e
    result = run_estimate(index_of(records), kit_model(settings), em=em, pairs=pairs)
    try:
        model_from_mapping(result)  # what the kit will load
    except ModelError as e:  # pragma: no cover - the estimate stays inside (0, 1)
        raise click.ClickException(f"estimate not usable: {e}") from e
    Path(out_path).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    click.echo(f"{len(records)} records: u from {pairs} random pairs, m from "
               f"{result['estimated']['m']}; written {out_path}")


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


@main.group()
def witness() -> None:
    """The broker's signed audit checkpoint, as this authority witnesses it
    (docs/protocol.md, "Witnessed checkpoints")."""


@witness.command("show")
@click.option("--config", "config_path", required=True,
              type=click.Path(exists=True, dir_okay=False), help="The kit's TOML settings.")
def witness_show(config_path: str) -> None:
    """Print the held checkpoint as JSON (for `federator audit verify --checkpoint`);
    the witness's status goes to standard error."""
    from adapters.kit.witness import INCONSISTENT, WitnessStore

    try:
        settings = load_settings(config_path)
    except SettingsError as e:
        raise click.ClickException(f"{config_path}: {e}") from e
    if not settings.witness_path:
        raise click.ClickException(f"{config_path}: witness_path is not set, so the held "
                                   "checkpoint is only in the running kit's memory")
    state = WitnessStore(settings.witness_path).read()
    if not isinstance(state.get("checkpoint"), dict):
        raise click.ClickException("no checkpoint held yet")
    click.echo(json.dumps(state["checkpoint"], indent=2))
    if state.get("status") == INCONSISTENT:
        click.echo(f"witness: inconsistent: {state.get('problem', {}).get('reason')}", err=True)
    else:
        click.echo("witness: consistent", err=True)


@witness.command("reset")
@click.option("--config", "config_path", default=None,
              type=click.Path(exists=True, dir_okay=False), help="The kit's TOML settings.")
@click.option("--state", "state_path", default=None, type=click.Path(dir_okay=False),
              help="Or the state file of `witness fetch`.")
@click.option("--reason", required=True, help="Why (kept in the new state and the log).")
def witness_reset(config_path: str | None, state_path: str | None, reason: str) -> None:
    """Start witnessing again, after the broker's operators have answered for an
    inconsistency: the held state is kept aside as FILE.reset-TIME (the evidence),
    and the next checkpoint offered is held as the first. Restart a kit whose state
    is in memory instead (it has no witness_path)."""
    from adapters.kit.witness import WitnessStore, reset

    if (config_path is None) == (state_path is None):
        raise click.UsageError("give --config (a kit) or --state (witness fetch's file)")
    if not reason.strip():
        raise click.BadParameter("say why the witness is reset", param_hint="--reason")
    if config_path is not None:
        try:
            state_path = str(load_settings(config_path).witness_path or "")
        except SettingsError as e:
            raise click.ClickException(f"{config_path}: {e}") from e
        if not state_path:
            raise click.ClickException(f"{config_path}: witness_path is not set: the state "
                                       "is in the running kit's memory; restart the kit")
    aside = reset(WitnessStore(state_path), reason.strip())
    if aside is None:
        click.echo("witness: nothing was held; nothing to reset")
        return
    click.echo(f"witness: reset; the previous state is kept as {aside}")


@witness.command("fetch")
@click.option("--broker", "broker_url", required=True,
              help="The broker's address, e.g. https://federator.example.")
@click.option("--state", "state_path", required=True, type=click.Path(dir_okay=False),
              help="The JSON file holding the checkpoint (created on first use).")
@click.option("--jwks-url", default=None,
              help="The broker's keys (default BROKER/.well-known/jwks.json).")
def witness_fetch(broker_url: str, state_path: str, jwks_url: str | None) -> None:
    """For an authority without the kit (FHIR, plug-ins), e.g. from cron: fetch
    the broker's latest checkpoint, check it extends the one held in --state, and
    hold it. Exit 1 when the broker's trail is inconsistent with what is held,
    2 when the broker cannot be reached."""
    import requests

    from adapters.kit.keys import BrokerKeys, jwks_session
    from adapters.kit.settings import trusted_jwks_url
    from adapters.kit.witness import INCONSISTENT, UNCHECKED, Witness, WitnessStore
    from adapters.witness import CHECKPOINT_PATH, JWKS_SUFFIX, PROOF_PATH

    base = broker_url.rstrip("/")
    if not trusted_jwks_url(base + CHECKPOINT_PATH):
        raise click.ClickException("--broker: must be an https:// URL (http only to loopback)")
    store = WitnessStore(state_path)
    checker = Witness(store, BrokerKeys(jwks_url or base + JWKS_SUFFIX), base + PROOF_PATH)
    try:
        response = jwks_session().get(base + CHECKPOINT_PATH, timeout=10,
                                      allow_redirects=False)
        response.raise_for_status()
        signed = response.json()["signed"]
    except (requests.RequestException, ValueError, KeyError, TypeError) as e:
        click.echo(f"the broker's checkpoint could not be fetched: {type(e).__name__}", err=True)
        sys.exit(2)
    status = checker.check(str(signed))
    if status == UNCHECKED:
        click.echo("the broker's checkpoint could not be checked (its keys or proofs are "
                   "unreachable, or it is not signed by them)", err=True)
        sys.exit(2)
    held = store.read().get("checkpoint") or {}
    click.echo(f"witness: {status}; holding the checkpoint of {held.get('tree_size')} records")
    if status == INCONSISTENT:
        click.echo(store.read().get("problem", {}).get("reason", ""), err=True)
        sys.exit(1)


@main.command("settings-docs")
@click.option("--output", type=click.Path(dir_okay=False), default=None,
              help="File to write, e.g. docs/kit-settings.md (default: standard output).")
def settings_docs(output: str | None) -> None:
    """Every kit setting, its meaning, value and default, as Markdown."""
    from adapters.kit.settings_doc import render

    if output is None:
        click.echo(render(), nl=False)
        return
    with open(output, "w", encoding="utf-8", newline="\n") as handle:
        handle.write(render())
