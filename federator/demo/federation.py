"""Start a whole synthetic federation on loopback: identity provider, adapter
kits with generated data, and the broker. Used by ``federator demo`` (kits as
separate gunicorn processes) and by the integration tests (kits in threads)."""

from __future__ import annotations

import json
import secrets
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import requests
from flask import Flask

from adapters.kit.app import create_kit_app
from adapters.kit.settings import load_settings
from federator import create_app
from federator.config import Settings
from federator.demo.files import BROKER_ISSUER, DemoFiles, registry_entry, write_world
from federator.demo.files import toml_array_of_tables as _toml_tables
from federator.demo.idp import WEB_CLIENT_ID, WEB_CLIENT_SECRET, create_idp_app, fetch_token
from federator.demo.mail import ADMIN_MAILBOX, DEMO_MAILBOX, MailServer, start_mail_server
from federator.demo.serving import ServedApp, bind
from federator.demo.world import World, generate_world


@dataclass
class Federation:
    directory: Path
    world: World
    files: DemoFiles
    settings: Settings
    app: Flask
    broker: ServedApp
    idp: ServedApp
    kit_urls: dict[str, str]
    kit_threads: list[ServedApp] = field(default_factory=list)
    kit_processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    held_ports: list[socket.socket] = field(default_factory=list)
    #: The demo's SMTP server, which catches the kits' notifications (``mail/``).
    mail: MailServer | None = None

    def token(self, persona: str = "practitioner") -> str:
        return fetch_token(self.idp.url, persona)

    def stop(self) -> None:
        for process in self.kit_processes:
            process.terminate()
        for process in self.kit_processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
        for served in (*self.kit_threads, self.broker, self.idp):
            served.stop()
        for served in self.kit_threads:
            kit = getattr(served.server.app, "extensions", {}).get("federator_kit") or {}
            if kit.get("notifier") is not None:
                kit["notifier"].close()
            if kit.get("tracing") is not None:
                kit["tracing"].shutdown()
        for sock in self.held_ports:
            sock.close()
        if self.mail is not None:
            self.mail.stop()
        self.app.extensions["federator"].trail.close()
        self.app.extensions["federator"].fanout.shutdown()
        self.app.extensions["federator"].engine.dispose()


def dev_secrets(directory: Path) -> dict[str, str]:
    """Secrets for a development federation, generated once and kept beside its data."""
    path = directory / "secrets.json"
    if path.exists():
        return dict(json.loads(path.read_text()))
    values = {"secret_key": secrets.token_urlsafe(48), "audit_key": secrets.token_urlsafe(48)}
    directory.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(values))
    path.chmod(0o600)
    return values


def start_federation(directory: Path, *, base: Settings | None = None, seed: int = 2026,
                     authorities: int = 6, broker_port: int = 0, idp_port: int = 0,
                     kit_base_port: int | None = None, extra_seed: Path | None = None,
                     notify: str = "immediate") -> Federation:
    """Kits run in threads on free ports when ``kit_base_port`` is None, else as
    separate processes on consecutive ports from it. One SMTP server catches the
    kits' notifications (``notify``: immediate | digest | off) in ``directory/mail``."""
    directory = Path(directory).resolve()
    world = generate_world(seed=seed, authorities=authorities)
    broker, idp = bind(broker_port), bind(idp_port)
    idp.start(create_idp_app(idp.url, authorities={a.id: a.name for a in world.authorities},
                             redirect_uris=[f"{broker.url}/auth/callback"]))
    files = write_world(world, directory / "authorities",
                        broker_jwks_url=f"{broker.url}/.well-known/jwks.json",
                        base_port=kit_base_port or 0)
    mail = start_mail_server(directory / "mail") if notify != "off" else None
    if mail is not None:
        for adapter in files.adapters:
            with adapter.settings_path.open("a", encoding="utf-8") as fh:
                fh.write(notify_settings(adapter.authority.id, mail.url, notify))
    threads: list[ServedApp] = []
    processes: list[subprocess.Popen[bytes]] = []
    urls: dict[str, str] = {}
    held: list[socket.socket] = []
    for adapter in files.adapters:
        if kit_base_port is None:
            if adapter.should_start:
                served = bind(0).start(create_kit_app(load_settings(adapter.settings_path)))
                threads.append(served)
                urls[adapter.authority.id] = served.url
            else:
                closed = _refusing_port()
                held.append(closed)
                urls[adapter.authority.id] = f"http://127.0.0.1:{closed.getsockname()[1]}"
        else:
            urls[adapter.authority.id] = adapter.url
            if adapter.should_start:
                processes.append(subprocess.Popen(  # noqa: S603 - our own module, fixed args
                    [sys.executable, "-m", "adapters.kit", "serve", "--config",
                     str(adapter.settings_path), "--port", str(adapter.port)],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    seed_text = _toml_tables("endpoint", [registry_entry(a.authority, urls[a.authority.id])
                                          for a in files.adapters])
    if extra_seed is not None:
        seed_text += "\n" + extra_seed.read_text(encoding="utf-8")
    files.registry_path.write_text(seed_text, encoding="utf-8")

    keys = dev_secrets(directory)
    settings = replace(
        base or Settings(),
        env="development", instance_dir=directory, broker_id=BROKER_ISSUER,
        public_url=broker.url, oidc_issuer=idp.url, registry_seed=files.registry_path,
        oidc_client_id=WEB_CLIENT_ID, oidc_client_secret=WEB_CLIENT_SECRET,
        secret_key=keys["secret_key"], audit_key=keys["audit_key"], generated=(),
    )
    app = create_app(settings, migrate=True)
    broker.start(app)
    federation = Federation(directory, world, files, settings, app, broker, idp, urls,
                            threads, processes, held, mail)
    wait_for_kits(federation)
    return federation


def notify_settings(authority_id: str, smtp_url: str, mode: str) -> str:
    """Kit settings lines: tell each authority's team mailbox (the demo data has no
    ``worker_email``), and its admin when the broker's trail stops extending the
    checkpoint the kit witnesses, through the demo's SMTP server."""
    return "\n".join([
        "", "# Added by the demo: notifications to the demo's SMTP server",
        f'notify = "{mode}"', f'smtp_url = "{smtp_url}"',
        f'team_mailbox = "{DEMO_MAILBOX.format(authority=authority_id)}"',
        f'admin_email = "{ADMIN_MAILBOX.format(authority=authority_id)}"', ""])


def _refusing_port() -> socket.socket:
    """A loopback port that refuses connections for as long as the socket is held
    (bound, never listening), so no other process can take it meanwhile."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    return sock


def wait_for_kits(federation: Federation, timeout_s: float = 30.0) -> None:
    """Until every kit that should listen answers its health check."""
    down = {a.authority.id for a in federation.files.adapters if not a.should_start}
    pending = {k: v for k, v in federation.kit_urls.items() if k not in down}
    limit = time.monotonic() + timeout_s
    while pending and time.monotonic() < limit:
        for authority, url in list(pending.items()):
            try:
                if requests.get(f"{url}/health", timeout=1).ok:
                    del pending[authority]
            except requests.RequestException:
                pass
        if pending:
            time.sleep(0.2)
    if pending:
        federation.stop()
        raise RuntimeError(f"adapters did not start: {', '.join(sorted(pending))}")


def describe(federation: Federation) -> dict[str, Any]:
    """What ``federator demo`` prints."""
    return {
        "broker": federation.broker.url,
        "identity_provider": federation.idp.url,
        "authorities": [
            {"id": a.authority.id, "name": a.authority.name, "url": federation.kit_urls[
                a.authority.id], "behaviour": a.authority.behaviour}
            for a in federation.files.adapters
        ],
    }
