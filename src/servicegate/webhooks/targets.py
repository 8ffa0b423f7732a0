"""Where deliveries may go: URL rules at registration, and the SSRF guard at delivery time.

At registration a URL must be absolute http(s) and, unless `[webhooks] allow_private_networks`
is on, must not name a non-public address literally. At delivery time every address a host name
resolves to is checked by the resolver of the delivery session itself, so the address checked is
the address connected to (no DNS-rebinding window).
"""

from __future__ import annotations

import functools
import ipaddress
import re
import socket
from typing import Any
from urllib.parse import urlsplit

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

MAX_URL_LENGTH = 2048
_METADATA = {
    ipaddress.ip_address("169.254.169.254"),   # AWS, GCP, Azure, OpenStack
    ipaddress.ip_address("169.254.170.2"),     # AWS ECS task metadata
    ipaddress.ip_address("100.100.100.200"),   # Alibaba Cloud
    ipaddress.ip_address("fd00:ec2::254"),     # AWS IPv6 metadata
}
_CGNAT = ipaddress.ip_network("100.64.0.0/10")


class TargetRefused(OSError):
    """The target resolves to an address deliveries may not reach."""


def refusal(address: str) -> str | None:
    """Why deliveries may not go to this IP address, or None if it is a public address."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return "not an IP address"
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return "an IPv4-mapped IPv6 address"  # connect to the IPv4 address itself instead
    if ip in _METADATA:
        return "a cloud metadata address"
    for test, what in (
        (ip.is_loopback, "a loopback address"),
        (ip.is_unspecified, "an unspecified address"),
        (ip.is_link_local, "a link-local address"),
        (ip.is_multicast, "a multicast address"),
        (isinstance(ip, ipaddress.IPv4Address) and ip in _CGNAT, "a carrier-grade NAT address"),
        (ip.is_private, "a private address"),
        (ip.is_reserved, "a reserved address"),
        (not ip.is_global, "a non-public address"),
    ):
        if test:
            return what
    return None


# The other spellings of an IPv4 address the system's resolver accepts (inet_aton): one to four
# parts, each decimal, octal (leading 0) or hex (0x): `127.1`, `0x7f000001`, `2130706433`.
_NUMERIC_IPV4 = re.compile(r"(?:0x[0-9a-f]*|[0-9]+)(?:\.(?:0x[0-9a-f]*|[0-9]+)){0,3}", re.I)


def literal_host(host: str) -> str | None:
    """The IP address a URL host names literally, if it does, however it is spelled."""
    candidate = host.strip("[]")
    try:
        return str(ipaddress.ip_address(candidate.split("%", 1)[0]))
    except ValueError:
        pass
    numeric = candidate.rstrip(".")
    if not _NUMERIC_IPV4.fullmatch(numeric):
        return None
    try:
        return socket.inet_ntoa(socket.inet_aton(numeric))
    except OSError:  # a part out of range: no address, and no host name either
        return None


def validate_url(url: str, *, allow_private: bool) -> str:
    """Return the URL if deliveries may be registered to it; raise ValueError saying why not."""
    if len(url) > MAX_URL_LENGTH:
        raise ValueError(f"the URL is longer than {MAX_URL_LENGTH} characters")
    if any(ch.isspace() or ord(ch) < 32 for ch in url):
        raise ValueError("the URL contains whitespace or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"malformed URL: {exc}") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise ValueError("the URL must be absolute and use http or https")
    if not parts.hostname:
        raise ValueError("the URL must name a host")
    if port == 0:
        raise ValueError("the URL names port 0")
    if not allow_private:
        literal = literal_host(parts.hostname)
        reason = refusal(literal) if literal else None
        if reason:
            raise ValueError(f"the URL points at {reason}; private networks are not allowed")
        if parts.hostname.rstrip(".").lower() in ("localhost", "localhost.localdomain"):
            raise ValueError("the URL points at localhost; private networks are not allowed")
    return url


def check_target(url: str, *, allow_private: bool) -> None:
    """At delivery time: refuse a literal non-public address (names are checked on resolving)."""
    if allow_private:
        return
    reason = _literal_refusal(url)
    if reason:
        raise TargetRefused(reason)


@functools.lru_cache(maxsize=4096)
def _literal_refusal(url: str) -> str | None:
    host = urlsplit(url).hostname or ""
    literal = literal_host(host)
    reason = refusal(literal) if literal else None
    return f"refused: {host} is {reason}" if reason else None


class GuardedResolver(AbstractResolver):
    """Resolves like aiohttp's default resolver, then drops every non-public address."""

    def __init__(self) -> None:
        self._inner = DefaultResolver()

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        allowed = [r for r in results if refusal(r["host"]) is None]
        if not allowed:
            reason = refusal(results[0]["host"]) if results else "unresolvable"
            raise TargetRefused(f"refused: {host} resolves to {reason}")
        return allowed

    async def close(self) -> None:
        await self._inner.close()


def resolver(allow_private: bool) -> Any:
    return DefaultResolver() if allow_private else GuardedResolver()
