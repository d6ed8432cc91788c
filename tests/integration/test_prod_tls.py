"""Production, exercised (issue 22; docs/production.md performs these same steps).

Debian's nginx ends TLS (deploy/nginx/federator.conf) in front of two
``federator serve`` processes (gunicorn, two workers each) on PostgreSQL and
Redis, with ``FEDERATOR_ENV=production`` and nothing relaxed: secrets from
``federator keys secrets``, the key ring from ``federator keys init``, an https
public URL and issuer (npm's oidc-provider over https), ``FEDERATOR_REQUIRED_ACR``,
a metrics token, and no ``--allow-development``. Two authorities' kits answer
behind their own nginx (deploy/nginx/federator-adapter.conf) on a test host of
their own, a network namespace with an address in a private range, which the
broker may reach only because ``FEDERATOR_ALLOWED_NETWORKS`` lists that /30
(loopback stays refused: one test registers a loopback URL and is refused).
Every certificate comes from a test CA made here (trustme), given to the broker
as ``FEDERATOR_CA_FILE`` and to each kit as its ``ca_file``.

A practitioner signs in and looks up a child through the form, a case system
through the API with its own access token; the trail verifies with the JWKS the
broker publishes over https; no log (brokers', both nginx's, kits') holds the
child's identity.
"""

from __future__ import annotations

import html
import os
import re
import shlex
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import pytest
import redis
import requests
import trustme
from support.brokers import FEDERATOR, free_port, start_broker, stop, wait_ready
from support.log_capture import identity_strings, leaks, read_path
from support.oidc_provider import (
    ACCOUNTS,
    CLIENT_ID,
    CLIENT_SECRET,
    access_token_at,
    provider_config,
    running_provider,
    sign_in_at,
)
from support.services import REDIS_URL, postgres_schema, unavailable
from support.tls_stack import NetnsHost, Nginx, render_site, require_tools

from federator.demo.files import (
    BROKER_ISSUER,
    kit_settings,
    registry_entry,
    toml_document,
    write_world,
)
from federator.demo.files import toml_array_of_tables as toml_tables
from federator.demo.world import Child, World, generate_world

pytestmark = pytest.mark.integration

AUTHORITIES = ("leeds-cs", "yorkshire-health")  # a council and the national health body
PUBLIC_PORT, KIT_PORTS, KIT_APP_PORTS = 8443, (8443, 8444), (8081, 8082)
ACR = "urn:test:aal3"  # kim's sign-in level at the provider (support.oidc_provider)
HTML = {"Accept": "text/html"}


@dataclass
class Deployment:
    public_url: str
    issuer: str
    ca: Path
    env: dict[str, str]
    world: World
    child: Child
    logs: list[Path]
    nginx: list[Nginx]


def run(env: dict[str, str], *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """A ``federator`` command as the operator types it."""
    done = subprocess.run([FEDERATOR, *args], env=env, capture_output=True, text=True,
                          timeout=120)
    if check:
        assert done.returncode == 0, f"federator {' '.join(args)}: {done.stderr[-2000:]}"
    return done


def exported(output: str) -> dict[str, str]:
    """``export NAME=value`` lines, read as a shell would."""
    values = {}
    for line in output.splitlines():
        word, assignment = shlex.split(line)
        assert word == "export"
        name, _, value = assignment.partition("=")
        values[name] = value
    return values


def known_to_both(world: World) -> Child:
    return next(c for c in world.children
                if not c.shielded and set(AUTHORITIES) <= set(c.known_to))


def certificate(ca: object, directory: Path, name: str, *identities: str) -> tuple[Path, Path]:
    cert = ca.issue_cert(*identities)  # type: ignore[attr-defined]
    chain, key = directory / f"{name}.crt", directory / f"{name}.key"
    cert.private_key_pem.write_to_path(str(key))
    with chain.open("wb") as fh:
        for blob in cert.cert_chain_pems:
            fh.write(blob.bytes())
    return chain, key


def kit_sites(host: NetnsHost, chain: Path, key: Path, prefix: Path) -> dict[str, str]:
    sites = {}
    for authority, port, app_port in zip(AUTHORITIES, KIT_PORTS, KIT_APP_PORTS, strict=True):
        sites[f"{authority}.conf"] = render_site("federator-adapter.conf", [
            ("listen 443 ssl;", f"listen {host.address}:{port} ssl;"),
            ("server_name adapter.council.example;", f"server_name {host.address};"),
            ("/etc/ssl/federator-adapter/fullchain.pem", str(chain)),
            ("/etc/ssl/federator-adapter/privkey.pem", str(key)),
            ("allow 203.0.113.10;", f"allow {host.gateway};"),
            ("/var/log/nginx/federator-adapter.access.log",
             str(prefix / f"{authority}.access.log")),
            ("/var/log/nginx/federator-adapter.error.log", str(prefix / f"{authority}.error.log")),
            ("proxy_pass http://127.0.0.1:8080;", f"proxy_pass http://127.0.0.1:{app_port};"),
        ])
    return sites


def broker_site(host: NetnsHost, chain: Path, key: Path, prefix: Path,
                ports: tuple[int, int]) -> str:
    return render_site("federator.conf", [
        ("server 127.0.0.1:8000;", f"server 127.0.0.1:{ports[0]};"),
        ("server 127.0.0.1:8001;", f"server 127.0.0.1:{ports[1]};"),
        ("listen 80;", f"listen {host.gateway}:8080;"),
        ("listen 443 ssl;", f"listen {host.gateway}:{PUBLIC_PORT} ssl;"),
        ("server_name federator.example.org;", f"server_name {host.gateway};"),
        ("/etc/ssl/federator/fullchain.pem", str(chain)),
        ("/etc/ssl/federator/privkey.pem", str(key)),
        ("/var/log/nginx/federator.access.log", str(prefix / "broker.access.log")),
        ("/var/log/nginx/federator.error.log", str(prefix / "broker.error.log")),
    ])


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    require_tools()
    root = tmp_path_factory.mktemp("prod-tls")
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.RedisError as e:
        unavailable("Redis", e)
    prefix = f"test-{uuid.uuid4().hex[:12]}:"
    ca = trustme.CA()
    ca_file = root / "test-ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    host = NetnsHost.create()
    processes: list[subprocess.Popen[bytes]] = []
    servers: list[Nginx] = []
    try:
        with postgres_schema() as database_url:
            public_url = f"https://{host.gateway}:{PUBLIC_PORT}"
            broker_cert = certificate(ca, root, "broker", host.gateway)
            kit_cert = certificate(ca, root, "kits", host.address)
            idp_cert = certificate(ca, root, "idp", "127.0.0.1")

            # The kits, on the test host, each behind the authority's nginx.
            world = generate_world()
            files = write_world(world, root / "authorities",
                                broker_jwks_url=f"{public_url}/.well-known/jwks.json")
            logs = []
            entries = []
            for authority, port, app_port in zip(AUTHORITIES, KIT_PORTS, KIT_APP_PORTS,
                                                 strict=True):
                adapter = next(a for a in files.adapters if a.authority.id == authority)
                settings = kit_settings(adapter.authority, csv_path=adapter.csv_path.resolve(),
                                        broker_jwks_url=f"{public_url}/.well-known/jwks.json")
                settings.update(record_ref_key=os.urandom(24).hex(), ca_file=str(ca_file),
                                audit_log_path=str(root / f"{authority}-audit.jsonl"))
                adapter.settings_path.write_text(toml_document(settings), encoding="utf-8")
                log = root / f"{authority}-kit.log"
                logs += [log, root / f"{authority}-audit.jsonl"]
                with log.open("wb") as fh:
                    processes.append(subprocess.Popen(host.command(
                        sys.executable, "-m", "adapters.kit", "serve", "--config",
                        str(adapter.settings_path), "--port", str(app_port)),
                        stdout=fh, stderr=fh))
                entries.append(registry_entry(adapter.authority,
                                              f"https://{host.address}:{port}"))
            kits_nginx = root / "nginx-kits"
            kits_nginx.mkdir()
            servers.append(Nginx(kits_nginx, kit_sites(host, *kit_cert, kits_nginx),
                                 [(host.address, p) for p in KIT_PORTS], host).start())
            seed = root / "registry.toml"
            seed.write_text(toml_tables("endpoint", entries), encoding="utf-8")

            ports = (free_port(), free_port())
            config = provider_config(public_url, tls={"cert": str(idp_cert[0]),
                                                      "key": str(idp_cert[1])})
            with running_provider(config) as issuer:
                env = {k: v for k, v in os.environ.items()
                       if not k.startswith(("FEDERATOR_", "PROMETHEUS_", "GUNICORN_",
                                            "REQUESTS_CA_BUNDLE", "SSL_CERT_", "CURL_CA"))}
                # docs/production.md, "Secrets" and "Settings": the same commands
                env.update(exported(run(env, "keys", "secrets").stdout))
                env.update({
                    "FEDERATOR_ENV": "production",
                    "FEDERATOR_INSTANCE_DIR": str(root / "instance"),
                    "FEDERATOR_DATABASE_URL": database_url,
                    "FEDERATOR_REDIS_URL": REDIS_URL, "FEDERATOR_REDIS_PREFIX": prefix,
                    "FEDERATOR_SIGNING_KEY_FILE": str(root / "keys" / "signing-key.jwk.json"),
                    "FEDERATOR_BROKER_ID": BROKER_ISSUER, "FEDERATOR_PUBLIC_URL": public_url,
                    "FEDERATOR_OIDC_ISSUER": issuer, "FEDERATOR_OIDC_CLIENT_ID": CLIENT_ID,
                    "FEDERATOR_OIDC_CLIENT_SECRET": CLIENT_SECRET,
                    "FEDERATOR_REQUIRED_ACR": ACR,
                    "FEDERATOR_CA_FILE": str(ca_file),
                    "FEDERATOR_ALLOWED_NETWORKS": host.network,
                    "FEDERATOR_METRICS_TOKEN": os.urandom(24).hex(),
                })
                run(env, "keys", "init")
                run(env, "db", "upgrade")
                run(env, "registry", "add", str(seed))
                brokers = []
                for i, port in enumerate(ports):
                    log = root / f"broker-{i}.log"
                    logs.append(log)
                    process, url = start_broker(env, log, port=port)
                    processes.append(process)
                    brokers.append((url, process, log))
                for url, process, log in brokers:
                    wait_ready(url, process, log)
                broker_nginx = root / "nginx-broker"
                broker_nginx.mkdir()
                servers.append(Nginx(broker_nginx, {"federator.conf": broker_site(
                    host, *broker_cert, broker_nginx, ports)},
                    [(host.gateway, PUBLIC_PORT)]).start())
                yield Deployment(public_url, issuer, ca_file, env, world, known_to_both(world),
                                 logs, servers)
    finally:
        for server in servers:
            server.stop()
        stop(processes)
        host.delete()
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()


def professionals(world: World, child: Child, authority: str) -> set[str]:
    return {i.professional_name for i in world.involvements_for(child.child_ref, authority)
            if not i.sensitive}


def test_a_practitioner_signs_in_and_looks_up_through_the_form(deployment: Deployment) -> None:
    d = deployment
    with requests.Session() as browser:
        browser.verify = str(d.ca)
        browser.trust_env = False  # else REQUESTS_CA_BUNDLE would override verify
        form = sign_in_at(d.public_url, d.issuer, browser, "kim", next_path="/lookups/new")
        assert form.status_code == 200 and form.url == f"{d.public_url}/lookups/new", form.text
        assert ACCOUNTS["kim"]["acr"] == ACR
        csrf = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', form.text)
        assert csrf, form.text[:1000]
        given = date.today() - timedelta(days=2)
        # as a browser does under the page's policy (same-origin: to the broker only)
        assert form.headers["Referrer-Policy"] == "same-origin"
        page = browser.post(f"{d.public_url}/lookups/new", timeout=30,
                            headers={**HTML, "Referer": form.url}, data={
            "csrf_token": csrf.group(1), "nhs_number": d.child.nhs_number,
            "postcode": d.child.postcodes[0],
            "purpose": "Finding services already involved", "basis_type": "consent",
            "given_by": "parent", "given_on": [str(given.day), str(given.month),
                                               str(given.year)],
            "consent_reference": "CASE-22", "include_past": "y"})
        assert page.status_code == 200, page.text[:2000]
        text = html.unescape(page.text)
        for authority in AUTHORITIES:
            names = professionals(d.world, d.child, authority)
            assert names and all(n in text for n in names), (authority, names)
        # without the session cookie the same post is refused, never looked up
        anonymous = requests.post(f"{d.public_url}/lookups/new", headers=HTML, timeout=30,
                                  verify=str(d.ca), allow_redirects=False,
                                  data={"nhs_number": d.child.nhs_number})
        assert anonymous.status_code in (302, 303, 400, 401, 403)


def api_lookup(d: Deployment) -> requests.Response:
    token = access_token_at(d.issuer, "kim", verify=str(d.ca))
    return requests.post(f"{d.public_url}/api/v1/lookups", timeout=30, verify=str(d.ca),
                           headers={"Authorization": f"Bearer {token}",
                                    "X-Request-Id": "prod-tls-api-1"},
                           json={"child": d.child.identity(),
                                 "purpose": "Assessment under section 17: services involved",
                                 "basis": {"type": "consent", "given_by": "parent",
                                           "given_on": (date.today() - timedelta(days=3))
                                           .isoformat(), "reference": "CASE-22",
                                           "covers_sensitive_services": False},
                                 "include_past": True})


def test_a_case_system_looks_up_through_the_api(deployment: Deployment) -> None:
    d = deployment
    answer = api_lookup(d)
    assert answer.status_code == 200, answer.text
    outcomes = {a["id"]: a["outcome"] for a in answer.json()["authorities"]}
    assert outcomes == {a: "match" for a in AUTHORITIES}, answer.json()
    # a token below the required authentication level is refused
    weak = access_token_at(d.issuer, "sam", verify=str(d.ca))
    refused = requests.post(f"{d.public_url}/api/v1/lookups", timeout=30, verify=str(d.ca),
                            headers={"Authorization": f"Bearer {weak}"}, json={})
    assert refused.status_code == 401


def test_registry_checks_over_tls_and_loopback_stays_refused(deployment: Deployment,
                                                             tmp_path: Path) -> None:
    """``registry check`` runs the conformance checks over TLS through the URL guard
    (the registry's own session trusts FEDERATOR_CA_FILE); a loopback URL is refused
    though FEDERATOR_ALLOWED_NETWORKS is set. Both commands at once (each starts the
    app: seconds)."""
    seed = tmp_path / "loopback.toml"
    seed.write_text(toml_tables("endpoint", [{
        **registry_entry(deployment.world.authorities[0], "https://127.0.0.1:9"),
        "id": "loopback-test"}]), encoding="utf-8")
    commands = [("registry", "check", AUTHORITIES[0]), ("registry", "add", str(seed))]
    running = [subprocess.Popen([FEDERATOR, *c], env=deployment.env, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
               for c in commands]
    checked, refused = (p.communicate(timeout=120)[0] for p in running)
    assert running[0].returncode == 0, checked
    assert "FAIL" not in checked and "PASS" in checked
    assert running[1].returncode != 0 and "loopback" in refused, refused


def test_the_trail_verifies_with_the_published_keys(deployment: Deployment) -> None:
    d = deployment
    looked = api_lookup(d)  # a lookup of its own, were it run alone
    assert looked.status_code == 200, looked.text
    # its receipt, a read: what the broker queued is in the chain before it answers
    token = access_token_at(d.issuer, "kim", verify=str(d.ca))
    lookup_id = looked.json()["lookup_id"]
    receipt = requests.get(f"{d.public_url}/api/v1/lookups/{lookup_id}/receipt", timeout=30,
                           verify=str(d.ca), headers={"Authorization": f"Bearer {token}"})
    assert receipt.status_code == 200, receipt.text
    verify_env = {k: v for k, v in d.env.items()
                  if k not in ("FEDERATOR_SECRET_KEY", "FEDERATOR_AUDIT_KEY",
                               "FEDERATOR_CREDENTIALS_KEY")}  # an auditor holds no secret
    done = run(verify_env, "audit", "verify", "--keys",
               f"{d.public_url}/.well-known/federator-keys.json")
    assert done.stdout.startswith("OK: "), done.stdout
    count = int(done.stdout.split()[1])
    assert count >= 3  # the registry's seeding, the lookup's two records


def test_no_log_holds_the_childs_identity(deployment: Deployment) -> None:
    d = deployment
    lines = [line for path in d.logs if path.exists() for line in read_path(path)]
    nginx_lines = [line for server in d.nginx for line in server.log_lines()]
    assert any("lookup completed" in line for line in lines)  # the brokers logged lookups
    assert any("POST /api/v1/lookups" in line for line in nginx_lines)
    assert any("POST /lookup " in line for line in nginx_lines)  # the kits' nginx
    secrets = identity_strings([d.child.identity()]) | set(d.child.postcodes)
    assert leaks(lines + nginx_lines, secrets) == []
