"""Safety of registered URLs: the broker must not be a way into its own network.

Pure checks over ``ipaddress`` plus one edge, the resolver, which is
injectable so tests map names to any address without DNS. Every address a
name resolves to is checked (one bad address refuses the lot); IPv6 forms
that carry an IPv4 address (IPv4-mapped, IPv4-compatible, 6to4, NAT64) are
judged by that IPv4 address too. ``resolve_checked`` is what an outbound client
calls at each new connection (DNS rebinding): it returns the one address to
connect to, having checked them all.

Some addresses are never allowed, whatever ``FEDERATOR_ALLOWED_NETWORKS``
lists (``never_allowed``): unspecified, loopback (except in development),
link-local, multicast and broadcast, the deprecated IPv6 site-local
``fec0::/10``, and the cloud metadata services' addresses. The allowed
networks open private ranges (an authority's adapter inside a VPN), nothing more.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
#: ``resolver(host, port)`` returns every address the name resolves to.
Resolver = Callable[[str, int], Sequence[str]]

NAT64 = (ipaddress.IPv6Network("64:ff9b::/96"), ipaddress.IPv6Network("64:ff9b:1::/48"))
IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")
#: SIIT's IPv4-translated form (RFC 2765): ``::ffff:0:a.b.c.d``
IPV4_TRANSLATED = ipaddress.IPv6Network("::ffff:0:0:0/96")
#: "This network" (RFC 791): Linux connects 0.x.x.x to the host itself.
THIS_NETWORK = ipaddress.IPv4Network("0.0.0.0/8")
LIMITED_BROADCAST = ipaddress.IPv4Address("255.255.255.255")
#: IPv6 site-local, deprecated by RFC 3879; ``ipaddress`` calls it global.
SITE_LOCAL = ipaddress.IPv6Network("fec0::/10")
#: Cloud instance metadata services (credentials of the machine the broker runs on):
#: AWS, GCP, Azure, DigitalOcean, OpenStack (169.254.169.254 and AWS's IPv6
#: fd00:ec2::254), GCP's IPv6 fd20:ce::254, Alibaba 100.100.100.200, Azure's
#: WireServer 168.63.129.16, Oracle's 192.0.0.192, ECS task metadata 169.254.170.2.
METADATA = frozenset(ipaddress.ip_address(a) for a in (
    "169.254.169.254", "169.254.170.2", "fd00:ec2::254", "fd20:ce::254",
    "100.100.100.200", "168.63.129.16", "192.0.0.192"))
MAX_URL_LENGTH = 500


class UnsafeURL(ValueError):
    """The URL may not be registered or called; the message says why."""


class UnsafeAddress(UnsafeURL):
    """A host resolves (or is) an address the broker must not connect to."""


@dataclass(frozen=True)
class UrlPolicy:
    development: bool = False
    allowed_networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def build(cls, *, development: bool, allowed_networks: Iterable[str]) -> UrlPolicy:
        """Raises ``ValueError`` naming ``FEDERATOR_ALLOWED_NETWORKS`` for a bad entry."""
        networks = []
        for entry in allowed_networks:
            try:
                networks.append(ipaddress.ip_network(entry.strip(), strict=False))
            except ValueError as e:
                raise ValueError(
                    f"FEDERATOR_ALLOWED_NETWORKS: {entry!r} is not a network (CIDR)") from e
        return cls(development=development, allowed_networks=tuple(networks))


@dataclass(frozen=True)
class UrlParts:
    scheme: str
    host: str
    port: int


def embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries, for the forms that reach it."""
    if isinstance(address, ipaddress.IPv4Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if any(address in net for net in NAT64):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address in IPV4_TRANSLATED:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address in IPV4_COMPATIBLE and int(address) > 1:  # not :: or ::1
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address.teredo is not None:
        return address.teredo[1]  # the client's address, as relays reach it
    return None


def never_allowed(address: IPAddress, *, development: bool) -> str | None:
    """Why ``address`` itself is never to be connected to, whatever networks are
    allowed (loopback is allowed in development, for the demo and tests)."""
    v4 = isinstance(address, ipaddress.IPv4Address)
    if address.is_unspecified or (v4 and address in THIS_NETWORK):
        return f"{address} is the unspecified address"
    if address.is_loopback:
        return None if development else (
            f"{address} is a loopback address (allowed only in development)")
    if address.is_multicast:
        return f"{address} is a multicast address"
    if address == LIMITED_BROADCAST:
        return f"{address} is the broadcast address"
    if address.is_link_local:
        return f"{address} is a link-local address"
    if address in METADATA:
        return f"{address} is a cloud metadata address"
    if not v4 and address in SITE_LOCAL:
        return f"{address} is a site-local address (deprecated)"
    return None


def address_problem(address: IPAddress, policy: UrlPolicy) -> str | None:
    """Why the broker must not connect to ``address``, or None when it may.

    ``never_allowed`` first, for the address and any IPv4 address inside it;
    then the allowed networks; then anything not public is refused."""
    inner = embedded_ipv4(address)
    problem = never_allowed(address, development=policy.development)
    if problem is None and inner is not None:
        problem = never_allowed(inner, development=policy.development)
        problem = f"{problem} (inside {address})" if problem else None
    if problem:
        return problem
    if any(address in net for net in _same_family(policy.allowed_networks, address)):
        return None
    if inner is not None and address.teredo is None:
        # A translated or mapped form reaches the IPv4 address itself: judge that.
        # A Teredo address reaches a relay, not the client inside it (whose
        # never-allowed forms are refused above): it is judged as itself.
        problem = address_problem(inner, policy)
        return f"{problem} (inside {address})" if problem else None
    if address.is_loopback:  # in development (never_allowed refuses it elsewhere)
        return None
    if address.is_private or not address.is_global:
        return f"{address} is not a public address (list its network in " \
               f"FEDERATOR_ALLOWED_NETWORKS to allow it)"
    return None


def _same_family(networks: Iterable[IPNetwork], address: IPAddress) -> list[IPNetwork]:
    return [n for n in networks if n.version == address.version]


def parse_url(url: str, policy: UrlPolicy) -> UrlParts:
    """Static checks of a URL (no DNS): scheme, no credentials in it, a host,
    a valid port; a literal IP host is checked here too."""
    if not isinstance(url, str) or not url:
        raise UnsafeURL("a URL is required")
    if len(url) > MAX_URL_LENGTH:
        raise UnsafeURL(f"the URL is longer than {MAX_URL_LENGTH} characters")
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url):
        raise UnsafeURL("the URL contains spaces or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as e:
        raise UnsafeURL(f"the URL is not valid: {e}") from e
    scheme = parts.scheme.lower()
    allowed = ("https", "http") if policy.development else ("https",)
    if scheme not in allowed:
        raise UnsafeURL("the URL must start with https://" + (
            " (or http:// in development)" if policy.development else ""))
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise UnsafeURL("the URL must not contain a user name or password")
    if parts.fragment or parts.query:
        raise UnsafeURL("the URL must not have a query or fragment")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise UnsafeURL("the URL has no host")
    literal = _literal(host)
    if literal is not None:
        problem = address_problem(literal, policy)
        if problem:
            raise UnsafeAddress(problem)
    elif (host == "localhost" or host.endswith(".localhost")) and not policy.development:
        raise UnsafeAddress(f"{host} is a loopback name (allowed only in development)")
    return UrlParts(scheme=scheme, host=host, port=port or (443 if scheme == "https" else 80))


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def system_resolver(host: str, port: int) -> list[str]:
    """Every address ``getaddrinfo`` gives for the name (the default resolver)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as e:
        raise UnsafeAddress(f"{host} does not resolve") from e
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def checked_addresses(host: str, port: int, policy: UrlPolicy,
                      resolver: Resolver = system_resolver) -> list[str]:
    """Resolve ``host`` and check every address; raise ``UnsafeAddress`` if any is not allowed."""
    literal = _literal(host)
    raw = [host] if literal is not None else list(resolver(host, port))
    if not raw:
        raise UnsafeAddress(f"{host} does not resolve")
    addresses = []
    for text in raw:
        try:
            address = ipaddress.ip_address(text)
        except ValueError as e:
            raise UnsafeAddress(f"{host} resolved to something that is not an address") from e
        problem = address_problem(address, policy)
        if problem:
            raise UnsafeAddress(f"{host} resolves to {problem}")
        addresses.append(str(address))
    return addresses


def check_url(url: str, policy: UrlPolicy, resolver: Resolver = system_resolver) -> UrlParts:
    """Everything checked at registration: the URL itself and every address of its host."""
    parts = parse_url(url, policy)
    checked_addresses(parts.host, parts.port, policy, resolver)
    return parts


class UrlGuard:
    """A policy bound to a resolver; hand ``guard.resolve_checked`` to outbound clients.
    ``ca_file`` (``FEDERATOR_CA_FILE``) is the CAs the registry's own calls trust."""

    def __init__(self, policy: UrlPolicy, resolver: Resolver = system_resolver, *,
                 ca_file: str | None = None) -> None:
        self.policy = policy
        self.resolver = resolver
        self.ca_file = ca_file

    def check(self, url: str) -> UrlParts:
        return check_url(url, self.policy, self.resolver)

    def check_static(self, url: str) -> UrlParts:
        return parse_url(url, self.policy)

    def resolve_checked(self, host: str, port: int) -> str:
        """One checked address to connect to; raises ``UnsafeAddress``."""
        return checked_addresses(host.strip("[]").rstrip("."), port, self.policy,
                                 self.resolver)[0]


def resolve_checked(host: str, port: int, *, policy: UrlPolicy | None = None,
                    resolver: Resolver = system_resolver) -> str:
    """One checked address for ``host`` (production policy unless one is given)."""
    return UrlGuard(policy or UrlPolicy(), resolver).resolve_checked(host, port)
