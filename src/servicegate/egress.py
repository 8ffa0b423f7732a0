"""Where outbound requests may go: the host the HTTP client connects to, and its address judged.

A check that reads a URL differently from the client guards nothing: `urlsplit` sees
`127。0。0。1` as a name, while yarl maps it (IDNA, UTS-46) to `127.0.0.1`, an address literal that
aiohttp connects to without asking any resolver. So `target` reads a URL once, the way yarl does
when the client is given a string, puts that normalised host into the URL that is sent, and
every judgement looks at that host: an address literal is judged here, in any spelling the
system's resolver also reads as an address; a name is judged by `GuardedResolver`, which the
sending session resolves with, so the address judged is the address connected to.
"""

from __future__ import annotations

import functools
import ipaddress
import re
import socket
from typing import Any

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver
from yarl import URL

MAX_URL_LENGTH = 2048
_METADATA = {
    ipaddress.ip_address("169.254.169.254"),   # AWS, GCP, Azure, OpenStack
    ipaddress.ip_address("169.254.170.2"),     # AWS ECS task metadata
    ipaddress.ip_address("100.100.100.200"),   # Alibaba Cloud
    ipaddress.ip_address("fd00:ec2::254"),     # AWS IPv6 metadata
}
_CGNAT = ipaddress.ip_network("100.64.0.0/10")
# What a normalised host name may be: dot-separated labels of letters, digits, `-` and `_`
# (internal names use it), one trailing dot allowed. Anything else (`%`, empty labels) is not a
# name any resolver reads the way this module would.
_LABEL = r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?"
_HOST_NAME = re.compile(rf"(?:{_LABEL}\.)*{_LABEL}\.?")
_LOCAL_NAMES = ("localhost", "localhost.localdomain")
# The other spellings of an IPv4 address the system's resolver accepts (inet_aton): one to four
# parts, each decimal, octal (leading 0) or hex (0x): `127.1`, `0x7f000001`, `2130706433`.
_NUMERIC_IPV4 = re.compile(r"(?:0x[0-9a-f]*|[0-9]+)(?:\.(?:0x[0-9a-f]*|[0-9]+)){0,3}", re.I)


class UnsafeURL(ValueError):
    """A URL the client cannot send as it reads, or whose host cannot be normalised."""


class TargetRefused(OSError):
    """The target is, or resolves to, an address outbound requests may not reach.

    An OSError, so that raised from the resolver aiohttp reports it as a connection error."""


def refusal(address: str) -> str | None:
    """Why requests may not go to this IP address, or None if it is a public address."""
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


def literal_host(host: str) -> str | None:
    """The IP address a (normalised) host names literally, if it does, however it is spelled."""
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


def host_refusal(host: str) -> str | None:
    """Why requests may not go to this normalised host without resolving it, or None."""
    literal = literal_host(host)
    if literal is not None:
        return refusal(literal)
    name = host.rstrip(".")
    if name in _LOCAL_NAMES or name.endswith(".localhost"):
        return "localhost"
    return None


@functools.lru_cache(maxsize=4096)
def _normalised_host(raw: str) -> str:
    """The host as yarl encodes it for the wire (lower case, IDNA with UTS-46 mapping)."""
    try:
        host = URL.build(scheme="http", host=raw).raw_host or ""
    except (ValueError, UnicodeError) as exc:
        raise UnsafeURL(f"the host {raw!r} cannot be normalised: {exc}") from None
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
        return host
    except ValueError:
        pass
    if not _HOST_NAME.fullmatch(host):
        raise UnsafeURL(f"the host {raw!r} is not a valid host name")
    try:
        URL.build(scheme="http", host=host).host  # noqa: B018 - punycode that does not decode
    except (ValueError, UnicodeError):
        raise UnsafeURL(f"the host {raw!r} is not a valid host name") from None
    return host


def target(url: str | URL) -> URL:
    """The URL the client sends, its host normalised; UnsafeURL when it cannot be.

    A string is read as the client reads one (`URL(text)`); a URL built with `encoded=True`
    keeps its path and query as they are and gets the normalised host put in."""
    if isinstance(url, str):
        if len(url) > MAX_URL_LENGTH:
            raise UnsafeURL(f"the URL is longer than {MAX_URL_LENGTH} characters")
        try:
            url = URL(url)
        except (ValueError, TypeError, UnicodeError) as exc:
            raise UnsafeURL(f"malformed URL: {exc}") from None
    if url.scheme not in ("http", "https"):
        raise UnsafeURL("the URL must be absolute and use http or https")
    try:
        raw = url.raw_host
    except ValueError as exc:  # an encoded URL reads its authority only now
        raise UnsafeURL(f"malformed URL: {exc}") from None
    if not raw:
        raise UnsafeURL("the URL must name a host")
    host = _normalised_host(raw)
    if host != raw:
        url = url.with_host(host)
    try:
        port = url.port
    except ValueError as exc:
        raise UnsafeURL(f"malformed URL: {exc}") from None
    if port == 0:
        raise UnsafeURL("the URL names port 0")
    return url


def judge(url: URL) -> None:
    """Refuse a URL from `target` whose host is a non-public address literal or localhost
    (names are judged by `GuardedResolver` when the session resolves them)."""
    host = url.raw_host or ""
    reason = host_refusal(host)
    if reason:
        raise TargetRefused(f"refused: {host} is {reason}")


def refused_by(exc: BaseException) -> TargetRefused | None:
    """The guard's refusal behind a client error (aiohttp wraps what the resolver raised)."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, TargetRefused):
            return seen
        seen = getattr(seen, "os_error", None) or seen.__cause__ or seen.__context__
    return None


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
