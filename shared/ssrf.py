"""Server-side request forgery guard: webhook targets must be public addresses.

The same check runs when an endpoint is registered (the registry) and on the address the
dispatcher actually connects to, since a name can resolve elsewhere by then.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class UnsafeTarget(ValueError):
    """A webhook URL or address that may not be called (the message says why)."""


def is_public_address(address: IPAddress) -> bool:
    """True unless the address is loopback, private, link-local, multicast, reserved,
    unspecified or otherwise not globally routable (IPv4-mapped IPv6 is read as its IPv4)."""
    if isinstance(address, ipaddress.IPv6Address):
        mapped = address.ipv4_mapped or address.sixtofour
        if mapped is not None:
            return is_public_address(mapped)
        if address.teredo is not None:
            return is_public_address(address.teredo[1])
    return address.is_global and not (
        address.is_loopback
        or address.is_private
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
    )


def check_address(address: str | IPAddress, *, allow_private: bool = False) -> IPAddress:
    """The address parsed; raises UnsafeTarget if it is not public (unless allowed)."""
    ip = ipaddress.ip_address(address) if isinstance(address, str) else address
    if not allow_private and not is_public_address(ip):
        raise UnsafeTarget(f"{ip} is not a public address")
    return ip


def resolve_checked(host: str, port: int, *, allow_private: bool = False) -> list[IPAddress]:
    """Every address ``host`` resolves to, each checked; raises UnsafeTarget if the name does not
    resolve or any address is not public (one bad answer is enough to refuse: DNS can rotate)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise UnsafeTarget(f"host {host!r} does not resolve") from exc
    addresses: list[IPAddress] = []
    for *_, sockaddr in infos:
        # An IPv6 sockaddr may carry a zone ("fe80::1%eth0"): the part before it is the address.
        ip = check_address(str(sockaddr[0]).split("%", 1)[0], allow_private=allow_private)
        if ip not in addresses:
            addresses.append(ip)
    if not addresses:
        raise UnsafeTarget(f"host {host!r} does not resolve")
    return addresses


def check_url(url: str, *, allow_private: bool = False) -> list[IPAddress]:
    """Refuse a URL that is not https or whose host is not public; the addresses it resolves
    to otherwise. With ``allow_private`` any http(s) host goes and nothing is resolved (no
    address would be refused; the sender resolves when it connects)."""
    parts = urlsplit(url)
    if parts.scheme != "https" and not (allow_private and parts.scheme == "http"):
        raise UnsafeTarget("must use https")
    host = parts.hostname
    if not host:
        raise UnsafeTarget("must name a host")
    if allow_private:
        return []
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return resolve_checked(host, port, allow_private=allow_private)
