"""The webhook SSRF guard: only public addresses, on IPv4, IPv6 and IPv4-mapped IPv6."""

from __future__ import annotations

import ipaddress

import pytest

from shared.ssrf import UnsafeTarget, check_address, check_url, is_public_address

REFUSED = [
    "127.0.0.1",
    "10.1.2.3",
    "172.16.0.1",
    "192.168.1.1",
    "169.254.169.254",  # cloud metadata
    "100.64.0.1",  # carrier-grade NAT
    "0.0.0.0",
    "224.0.0.1",
    "240.0.0.1",
    "255.255.255.255",
    "::1",
    "::",
    "fe80::1",
    "fc00::1",
    "ff02::1",
    "::ffff:127.0.0.1",
    "::ffff:10.0.0.1",
    "::ffff:169.254.169.254",
    "2002:7f00:1::",  # 6to4 of 127.0.0.1
]
ALLOWED = ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111", "::ffff:8.8.8.8"]


@pytest.mark.parametrize("address", REFUSED)
def test_non_public_addresses_are_refused(address: str) -> None:
    assert not is_public_address(ipaddress.ip_address(address))
    with pytest.raises(UnsafeTarget):
        check_address(address)
    assert check_address(address, allow_private=True) == ipaddress.ip_address(address)


@pytest.mark.parametrize("address", ALLOWED)
def test_public_addresses_pass(address: str) -> None:
    assert is_public_address(ipaddress.ip_address(address))


def test_url_must_be_https_unless_private_targets_are_allowed() -> None:
    with pytest.raises(UnsafeTarget, match="https"):
        check_url("http://93.184.216.34/hook")
    assert check_url("https://93.184.216.34/hook") == [ipaddress.ip_address("93.184.216.34")]
    assert check_url("http://127.0.0.1:9/hook", allow_private=True) == []
    assert check_url("http://no-such-host.invalid/", allow_private=True) == []  # not resolved
    with pytest.raises(UnsafeTarget, match="https"):
        check_url("ftp://127.0.0.1/", allow_private=True)


def test_a_name_resolving_to_loopback_is_refused() -> None:
    with pytest.raises(UnsafeTarget, match="not a public address"):
        check_url("https://localhost/hook")
    with pytest.raises(UnsafeTarget, match="not a public address"):
        check_url("https://[::ffff:7f00:1]/hook")


def test_an_unresolvable_host_is_refused() -> None:
    with pytest.raises(UnsafeTarget, match="does not resolve"):
        check_url("https://no-such-host.invalid/hook")
