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
