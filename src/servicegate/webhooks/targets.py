"""Where deliveries may go: URL rules at registration, and the SSRF guard at delivery time.

Both read the URL through `servicegate.egress`, the way the delivery client reads it: the host
judged at registration, by `/webhooks/test` and before every delivery is the host connected to.
"""

from __future__ import annotations

import functools
from typing import Any

from yarl import URL

from servicegate.egress import (
    MAX_URL_LENGTH,
    GuardedResolver,
    TargetRefused,
    UnsafeURL,
    host_refusal,
    judge,
    literal_host,
    refusal,
    target,
)
from servicegate.egress import resolver as _resolver

__all__ = ["MAX_URL_LENGTH", "GuardedResolver", "TargetRefused", "check_target", "delivery_url",
           "literal_host", "refusal", "resolver", "validate_url"]


def validate_url(url: str, *, allow_private: bool) -> str:
    """Return the URL if deliveries may be registered to it; raise ValueError saying why not."""
    if len(url) > MAX_URL_LENGTH:
        raise ValueError(f"the URL is longer than {MAX_URL_LENGTH} characters")
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 0x7F for ch in url):
        raise ValueError("the URL contains whitespace or control characters")
    if "\\" in url:
        # clients disagree on a backslash: WHATWG parsers read it as `/`, RFC 3986 ones do not
        raise ValueError("the URL contains a backslash")
    parsed = target(url)
    if parsed.raw_user is not None or parsed.raw_password is not None:
        # credentials in the URL would be stored and listed in clear; a secret signs instead
        raise ValueError("the URL contains user info (user:password@); "
                         "register a secret instead")
    if not allow_private:
        reason = host_refusal(parsed.raw_host or "")
        if reason:
            raise ValueError(f"the URL's host {parsed.raw_host} is {reason}; "
                             "private networks are not allowed")
    return url


@functools.lru_cache(maxsize=4096)
def delivery_url(url: str) -> URL:
    """The registered URL as the client sends it, read once per webhook URL."""
    return target(url)


def check_target(url: str, *, allow_private: bool) -> URL:
    """The URL to send to; TargetRefused for one that cannot be read or, unless allowed,
    names a non-public address literally (names are judged on resolving)."""
    try:
        parsed = delivery_url(url)
    except UnsafeURL as exc:
        raise TargetRefused(f"refused: {exc}") from None
    if not allow_private:
        judge(parsed)
    return parsed


def resolver(allow_private: bool) -> Any:
    return _resolver(allow_private)
