"""Registered URLs may only reach public addresses (or configured networks)."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

import pytest

from federator.registry.urlguard import (
    UnsafeAddress,
    UnsafeURL,
    UrlGuard,
    UrlPolicy,
    address_problem,
    check_url,
    embedded_ipv4,
    never_allowed,
    parse_url,
    resolve_checked,
)

PRODUCTION = UrlPolicy()
DEVELOPMENT = UrlPolicy(development=True)

NAMES = {
    "public.example": ["93.184.216.34", "8.8.8.8"],
    "good.example": ["8.8.8.8", "2001:4860:4860::8888"],
    "loopback.example": ["127.0.0.1"],
    "private.example": ["10.1.2.3"],
    "metadata.example": ["169.254.169.254"],
    "v6loopback.example": ["::1"],
    "mapped.example": ["::ffff:127.0.0.1"],
    "mapped-private.example": ["::ffff:10.0.0.1"],
    "mixed.example": ["8.8.8.8", "10.0.0.7"],
    "nat64.example": ["64:ff9b::a9fe:a9fe"],
    "sixtofour.example": ["2002:0a00:0001::1"],
    "cgnat.example": ["100.64.0.1"],
    "zero.example": ["0.0.0.0"],  # noqa: S104 - an address to refuse
}


def resolver(host: str, port: int) -> Sequence[str]:
    try:
        return NAMES[host]
    except KeyError:
        raise UnsafeAddress(f"{host} does not resolve") from None


def guard(policy: UrlPolicy = PRODUCTION) -> UrlGuard:
    return UrlGuard(policy, resolver)


@pytest.mark.parametrize("host", [
    "loopback.example", "private.example", "metadata.example", "v6loopback.example",
    "mapped.example", "mapped-private.example", "mixed.example", "nat64.example",
    "sixtofour.example", "cgnat.example", "zero.example",
])
def test_names_resolving_to_internal_addresses_are_refused_in_production(host: str) -> None:
    with pytest.raises(UnsafeAddress):
        guard().check(f"https://{host}/federator")
    with pytest.raises(UnsafeAddress):
        guard().resolve_checked(host, 443)


@pytest.mark.parametrize("host", [
    "private.example", "metadata.example", "mapped-private.example", "mixed.example",
    "nat64.example", "sixtofour.example", "zero.example",
])
def test_development_still_refuses_private_and_link_local(host: str) -> None:
    with pytest.raises(UnsafeAddress):
        guard(DEVELOPMENT).check(f"http://{host}/federator")


@pytest.mark.parametrize("host", ["loopback.example", "v6loopback.example", "mapped.example"])
def test_development_allows_loopback(host: str) -> None:
    assert guard(DEVELOPMENT).check(f"http://{host}:8080/x").port == 8080
    assert ipaddress.ip_address(guard(DEVELOPMENT).resolve_checked(host, 8080)).is_loopback \
        or host == "mapped.example"


def test_public_name_gives_a_checked_address_to_connect_to() -> None:
    assert guard().resolve_checked("good.example", 443) == "8.8.8.8"
    parts = guard().check("https://public.example/fed")
    assert (parts.host, parts.port) == ("public.example", 443)


def test_one_bad_address_among_good_ones_refuses_the_name() -> None:
    with pytest.raises(UnsafeAddress, match=r"10\.0\.0\.7"):
        guard().resolve_checked("mixed.example", 443)


def test_allowed_networks_let_listed_private_ranges_through() -> None:
    policy = UrlPolicy.build(development=False, allowed_networks=["10.0.0.0/8"])
    assert guard(policy).resolve_checked("private.example", 443) == "10.1.2.3"
    assert ipaddress.ip_address(guard(policy).resolve_checked("mapped-private.example", 443)
                                ).ipv4_mapped == ipaddress.ip_address("10.0.0.1")
    with pytest.raises(UnsafeAddress):
        guard(policy).resolve_checked("metadata.example", 443)


def test_a_bad_allowed_network_names_the_setting() -> None:
    with pytest.raises(ValueError, match="FEDERATOR_ALLOWED_NETWORKS"):
        UrlPolicy.build(development=False, allowed_networks=["not-a-network"])


@pytest.mark.parametrize("url, why", [
    ("http://public.example/", "https"),
    ("ftp://public.example/", "https"),
    ("https://user:pw@public.example/", "user name"),
    ("https:///nohost", "no host"),
    ("https://public.example/?a=1", "query"),
    ("https://public.example/ x", "spaces"),
    ("https://127.0.0.1/", "loopback"),
    ("https://[::1]/", "loopback"),
    ("https://[::ffff:169.254.169.254]/", "link-local"),
    ("https://169.254.169.254/latest/meta-data", "link-local"),
    ("https://localhost/", "loopback"),
    ("https://public.example:99999/", "not valid"),
    ("", "required"),
])
def test_static_checks_name_the_problem(url: str, why: str) -> None:
    with pytest.raises(UnsafeURL, match=why):
        parse_url(url, PRODUCTION)


def test_unresolvable_host_is_refused() -> None:
    with pytest.raises(UnsafeAddress, match="does not resolve"):
        check_url("https://nowhere.example/", PRODUCTION, resolver)


@pytest.mark.parametrize("v6, v4", [
    ("::ffff:127.0.0.1", "127.0.0.1"),
    ("2002:a9fe:a9fe::1", "169.254.169.254"),
    ("64:ff9b::10.0.0.1", "10.0.0.1"),
    ("64:ff9b:1::a00:1", "10.0.0.1"),
    ("::10.0.0.1", "10.0.0.1"),
])
def test_embedded_ipv4_forms_are_unwrapped(v6: str, v4: str) -> None:
    assert embedded_ipv4(ipaddress.ip_address(v6)) == ipaddress.ip_address(v4)
    assert address_problem(ipaddress.ip_address(v6), PRODUCTION) is not None


def test_plain_global_addresses_pass() -> None:
    assert address_problem(ipaddress.ip_address("2001:4860:4860::8888"), PRODUCTION) is None
    assert address_problem(ipaddress.ip_address("64:ff9b::8.8.8.8"), PRODUCTION) is None
    assert embedded_ipv4(ipaddress.ip_address("::1")) is None


def test_module_resolve_checked_defaults_to_the_production_policy() -> None:
    with pytest.raises(UnsafeAddress):
        resolve_checked("127.0.0.1", 443)
    assert resolve_checked("v6loopback.example", 80, policy=DEVELOPMENT,
                           resolver=resolver) == "::1"


# -- never allowed, whatever FEDERATOR_ALLOWED_NETWORKS says ---------------------------

EVERYTHING = UrlPolicy.build(development=False, allowed_networks=[
    "0.0.0.0/0", "::/0", "169.254.0.0/16", "127.0.0.0/8", "fec0::/10", "fd00::/8",
    "100.64.0.0/10", "224.0.0.0/4"])
EVERYTHING_IN_DEVELOPMENT = UrlPolicy(development=True,
                                      allowed_networks=EVERYTHING.allowed_networks)


def teredo(client: str) -> str:
    """A Teredo address (2001::/32) whose client is ``client`` (stored inverted)."""
    server = int(ipaddress.IPv4Address("65.54.227.120"))
    inverted = int(ipaddress.IPv4Address(client)) ^ 0xFFFFFFFF
    return str(ipaddress.IPv6Address((0x20010000 << 96) | (server << 64) | inverted))


NEVER = {
    "169.254.169.254": "link-local", "169.254.0.23": "link-local", "fe80::1": "link-local",
    "fd00:ec2::254": "metadata", "fd20:ce::254": "metadata",
    "100.100.100.200": "metadata", "168.63.129.16": "metadata", "192.0.0.192": "metadata",
    "0.0.0.0": "unspecified", "0.1.2.3": "unspecified", "::": "unspecified",  # noqa: S104
    "224.0.0.1": "multicast", "239.255.255.250": "multicast", "ff02::1": "multicast",
    "255.255.255.255": "broadcast", "fec0::1": "site-local", "fef0::1": "site-local",
    # IPv4 inside IPv6: mapped, compatible, SIIT-translated, 6to4, NAT64 (both), Teredo
    "::ffff:169.254.169.254": "link-local", "::169.254.169.254": "link-local",
    "::ffff:0:a9fe:a9fe": "link-local", "2002:a9fe:a9fe::1": "link-local",
    "64:ff9b::a9fe:a9fe": "link-local", "64:ff9b::100.100.100.200": "metadata",
    "64:ff9b:1::a9fe:a9fe": "link-local", "::ffff:100.100.100.200": "metadata",
    "2002:6464:64c8::1": "metadata", "::ffff:0.0.0.0": "unspecified",
    "::ffff:224.0.0.1": "multicast", teredo("169.254.169.254"): "link-local",
}


@pytest.mark.parametrize("text, why", sorted(NEVER.items()))
def test_never_allowed_addresses_are_refused_whatever_networks_are_allowed(
        text: str, why: str) -> None:
    address = ipaddress.ip_address(text)
    for policy in (PRODUCTION, EVERYTHING, DEVELOPMENT, EVERYTHING_IN_DEVELOPMENT):
        problem = address_problem(address, policy)
        assert problem is not None and why in problem, (text, policy, problem)


@pytest.mark.parametrize("text", ["127.0.0.1", "127.8.9.10", "::1", "::ffff:127.0.0.1",
                                  "::127.0.0.1", "2002:7f00:1::1", "64:ff9b::7f00:1"])
def test_loopback_only_in_development_even_when_allowed(text: str) -> None:
    address = ipaddress.ip_address(text)
    for policy in (PRODUCTION, EVERYTHING):
        problem = address_problem(address, policy)
        assert problem is not None and "loopback" in problem, (text, problem)
    for policy in (DEVELOPMENT, EVERYTHING_IN_DEVELOPMENT):
        assert address_problem(address, policy) is None, text


def test_never_allowed_names_the_category_of_the_address_itself() -> None:
    assert never_allowed(ipaddress.ip_address("fd00:ec2::254"), development=False) == \
        "fd00:ec2::254 is a cloud metadata address"
    assert never_allowed(ipaddress.ip_address("127.0.0.1"), development=True) is None
    # not its business: private and public addresses are judged by the policy
    for text in ("10.0.0.1", "fd12::1", "100.64.0.1", "8.8.8.8", "2001:4860:4860::8888"):
        assert never_allowed(ipaddress.ip_address(text), development=False) is None


def test_allowed_networks_still_open_private_ranges_but_nothing_never_allowed() -> None:
    policy = UrlPolicy.build(development=False,
                             allowed_networks=["10.0.0.0/8", "fd00::/8", "100.64.0.0/10"])
    for text in ("10.1.2.3", "::ffff:10.0.0.1", "fd12::1", "100.64.0.1"):
        assert address_problem(ipaddress.ip_address(text), policy) is None, text
    for text in ("fd00:ec2::254", "100.100.100.200", "::ffff:100.100.100.200"):
        assert "metadata" in (address_problem(ipaddress.ip_address(text), policy) or ""), text
    # without the networks listed, the private ranges are refused as before
    for text in ("10.1.2.3", "fd12::1", "100.64.0.1"):
        assert "not a public address" in (
            address_problem(ipaddress.ip_address(text), PRODUCTION) or ""), text


def test_site_local_is_refused_though_ipaddress_calls_it_global() -> None:
    address = ipaddress.ip_address("fec0::1")
    assert address.is_global  # the reason for the explicit rule
    assert "site-local" in (address_problem(address, PRODUCTION) or "")


def test_allowing_everything_does_not_open_metadata_through_a_name_or_a_literal() -> None:
    wide = guard(EVERYTHING)
    assert wide.resolve_checked("private.example", 443) == "10.1.2.3"
    for host in ("metadata.example", "nat64.example", "zero.example", "loopback.example"):
        with pytest.raises(UnsafeAddress):
            wide.resolve_checked(host, 443)
    for url in ("https://169.254.169.254/latest", "https://[fd00:ec2::254]/",
                "https://100.100.100.200/", "https://[fec0::1]/", "https://[::ffff:a9fe:a9fe]/"):
        with pytest.raises(UnsafeAddress):
            parse_url(url, EVERYTHING)


def test_a_teredo_address_with_a_public_client_is_still_not_public() -> None:
    # 2001:0::/32 carrying client 8.8.8.8: the relay, not the client, is reached
    address = ipaddress.ip_address("2001:0:4136:e378:8000:63bf:f7f7:f7f7")
    assert address.teredo is not None and str(address.teredo[1]) == "8.8.8.8"
    problem = address_problem(address, PRODUCTION)
    assert problem is not None and "not a public address" in problem
