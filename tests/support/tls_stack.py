"""The pieces of a production deployment on one machine, for test_prod_tls.py:

- ``NetnsHost``: a network namespace joined to this one by a veth pair, so the
  authorities' kits have an address of their own in a private range (what the URL
  guard refuses unless ``FEDERATOR_ALLOWED_NETWORKS`` lists it) instead of
  loopback (which production refuses whatever is allowed);
- ``certificates``: a test CA (``trustme``) and the certificates it signs;
- ``render_site`` and ``Nginx``: Debian's nginx serving a site file of
  ``deploy/nginx/`` with its example values replaced (every one must be found, so
  the file and the test cannot drift apart).

Each needs root and a tool: ``require`` fails the run when one is missing under
``FEDERATOR_REQUIRE_SERVICES=1`` (scripts/test installs nginx), else skips.
"""

from __future__ import annotations

import ipaddress
import os
import random
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from support.services import REQUIRED

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "nginx"
NGINX = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/sbin")
IP = shutil.which("ip") or shutil.which("ip", path="/usr/sbin:/sbin")


def require(what: str, problem: str | None) -> None:
    if problem is None:
        return
    if REQUIRED:
        pytest.fail(f"{what} is required (FEDERATOR_REQUIRE_SERVICES=1): {problem}")
    pytest.skip(f"{what}: {problem}")


def require_tools() -> None:
    require("nginx", None if NGINX else "not installed (apt-get install nginx-light; "
            "scripts/test does)")
    require("network namespaces", None if IP and os.geteuid() == 0 else
            "needs root and iproute2's ip")


def _ip(*args: str, netns: str | None = None) -> None:
    assert IP is not None
    command = [IP, "netns", "exec", netns, IP, *args] if netns else [IP, *args]
    subprocess.run(command, check=True, capture_output=True, timeout=20)


def _subnets_in_use() -> list[ipaddress.IPv4Network]:
    assert IP is not None
    out = subprocess.run([IP, "-4", "-o", "addr", "show"], check=True, capture_output=True,
                         text=True, timeout=20).stdout
    return [ipaddress.ip_interface(word).network for line in out.splitlines()
            for word in line.split()[3:4]]


@dataclass
class NetnsHost:
    """A namespace ``name`` whose end of the veth pair is ``address``; this namespace's
    end is ``gateway``. Both in a /30 of 10.0.0.0/8 that no interface here uses."""

    name: str
    address: str
    gateway: str
    network: str
    _outer: str = field(repr=False, default="")

    @classmethod
    def create(cls) -> NetnsHost:
        used = _subnets_in_use()
        for _ in range(100):
            net = ipaddress.ip_network(
                f"10.{random.randint(160, 250)}.{random.randint(0, 255)}."
                f"{random.randrange(0, 256, 4)}/30")
            if not any(net.overlaps(u) for u in used):
                break
        else:
            raise RuntimeError("no free /30 in 10.160.0.0/11")
        gateway, address = (str(h) for h in net.hosts())
        tag = uuid.uuid4().hex[:8]
        host = cls(f"fedtls-{tag}", address, gateway, str(net), f"fvo{tag}")
        _ip("netns", "add", host.name)
        try:
            _ip("link", "add", host._outer, "type", "veth", "peer", "name", f"fvi{tag}")
            _ip("link", "set", f"fvi{tag}", "netns", host.name)
            _ip("addr", "add", f"{gateway}/30", "dev", host._outer)
            _ip("link", "set", host._outer, "up")
            _ip("addr", "add", f"{address}/30", "dev", f"fvi{tag}", netns=host.name)
            _ip("link", "set", f"fvi{tag}", "up", netns=host.name)
            _ip("link", "set", "lo", "up", netns=host.name)
        except BaseException:
            host.delete()
            raise
        return host

    def command(self, *args: str) -> list[str]:
        """``args`` run inside the namespace."""
        assert IP is not None
        return [IP, "netns", "exec", self.name, *args]

    def delete(self) -> None:
        """The namespace and its veth pair (deleting one end deletes both)."""
        assert IP is not None
        subprocess.run([IP, "link", "del", self._outer], capture_output=True, timeout=20)
        subprocess.run([IP, "netns", "del", self.name], capture_output=True, timeout=20)


def render_site(name: str, replacements: Sequence[tuple[str, str]]) -> str:
    """``deploy/nginx/<name>`` with each example text replaced; one that is not
    found fails the test (the sample changed: change the test with it)."""
    text = (DEPLOY / name).read_text(encoding="utf-8")
    for old, new in replacements:
        assert old in text, f"deploy/nginx/{name} no longer has {old!r}"
        text = text.replace(old, new)
    return text


MAIN = """user root;
worker_processes 1;
daemon off;
pid {prefix}/nginx.pid;
error_log {prefix}/main.error.log warn;
events {{ worker_connections 256; }}
http {{
    client_body_temp_path {prefix}/tmp/body;
    proxy_temp_path {prefix}/tmp/proxy;
    fastcgi_temp_path {prefix}/tmp/fastcgi;
    uwsgi_temp_path {prefix}/tmp/uwsgi;
    scgi_temp_path {prefix}/tmp/scgi;
{includes}
}}
"""


@dataclass
class Nginx:
    """An nginx (master and one worker) serving ``sites``, in ``prefix``."""

    prefix: Path
    sites: Mapping[str, str]
    #: the addresses it listens on, each reachable from here (it is ready when all answer)
    listens: Sequence[tuple[str, int]]
    host: NetnsHost | None = None
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> Nginx:
        assert NGINX is not None
        (self.prefix / "tmp").mkdir(parents=True, exist_ok=True)
        includes = []
        for file_name, text in self.sites.items():
            (self.prefix / file_name).write_text(text, encoding="utf-8")
            includes.append(f"    include {self.prefix / file_name};")
        conf = self.prefix / "nginx.conf"
        conf.write_text(MAIN.format(prefix=self.prefix, includes="\n".join(includes)),
                        encoding="utf-8")
        command = [NGINX, "-p", str(self.prefix), "-c", str(conf)]
        if self.host is not None:
            command = self.host.command(*command)
        checked = subprocess.run([*command, "-t"], capture_output=True, text=True, timeout=30)
        assert checked.returncode == 0, checked.stderr
        with (self.prefix / "stderr.log").open("wb") as fh:
            self.process = subprocess.Popen(command, stdout=fh, stderr=fh)
        deadline = time.monotonic() + 15
        pending = list(self.listens)
        while pending:
            if self.process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"nginx did not start listening on {pending}: {self.logs()}")
            try:
                socket.create_connection(pending[0], timeout=1).close()
                pending.pop(0)
            except OSError:
                time.sleep(0.05)
        return self

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in sorted(self.prefix.glob("*.log")))

    def log_lines(self) -> list[str]:
        return self.logs().splitlines()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()  # SIGTERM: nginx's fast shutdown
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
