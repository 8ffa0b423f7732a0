"""Sub-paths that cannot leave the upstream base: splitting, encoding, and the final URL check."""

from __future__ import annotations

import re
from urllib.parse import quote, unquote

from yarl import URL

from servicegate.expressions import Part

# RFC 3986 pchar minus nothing that could start a new path, query or fragment.
_SEGMENT_SAFE = "!$&'()*+,;=:@-._~"
_FORBIDDEN_CHARS = frozenset("/\\\x00")
# What a rendered value keeps unencoded where it lands: in the path a `/` may add segments (the
# result is checked against the base), never `?` or `#`; in a query or fragment neither `&`,
# `=`, `+` nor `#`, so a value stays one value. A value is data: its `%` is encoded too, except
# in text already encoded (`{{ subpath }}`, `| urlquote`), whose `%XX` escapes are kept.
_VALUE_SAFE = {"path": _SEGMENT_SAFE + "/", "query": "!$'()*,;:@/?-._~",
               "fragment": "!$'()*,;:@/?-._~"}
_ESCAPE = re.compile(r"(%[0-9A-Fa-f]{2})")


class UnsafePath(ValueError):
    """A sub-path or rendered URL that could escape the configured upstream base."""


def _check_segment(decoded: str) -> None:
    if decoded in (".", ".."):
        raise UnsafePath("dot segments are not allowed in a sub-path")
    if any(ch in _FORBIDDEN_CHARS or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in decoded):
        raise UnsafePath("encoded slashes, backslashes and control characters are not allowed")


def split_raw(raw: str) -> list[str]:
    """Split a raw (still percent-encoded) sub-path into decoded segments; empty ones dropped."""
    segments: list[str] = []
    for piece in raw.split("/"):
        if not piece:
            continue
        try:
            decoded = unquote(piece, errors="strict")
        except UnicodeDecodeError:
            raise UnsafePath("the sub-path is not valid UTF-8") from None
        _check_segment(decoded)
        segments.append(decoded)
    return segments


def encode_segments(segments: list[str]) -> str:
    return "/".join(quote(segment, safe=_SEGMENT_SAFE) for segment in segments)


def _component(text: str) -> str:
    """Where the next character of a URL that begins with `text` lands."""
    scheme_end = text.find("://")
    if scheme_end < 0:
        return "origin"
    rest = text[scheme_end + 3:]
    cut = min((i for i in (rest.find("/"), rest.find("?"), rest.find("#")) if i >= 0),
              default=-1)
    if cut < 0:
        return "origin"
    rest = rest[cut:]
    if "#" in rest:
        return "fragment"
    return "query" if "?" in rest else "path"


def _encoded(value: str, component: str, already: bool) -> str:
    safe = _VALUE_SAFE[component]
    if not already:
        return quote(value, safe=safe)
    pieces = _ESCAPE.split(value)
    return "".join(piece if i % 2 else quote(piece, safe=safe) for i, piece in enumerate(pieces))


def assemble(parts: list[Part]) -> str:
    """A URL from a template's parts, each rendered value percent-encoded for the component it
    lands in. A value in the scheme or authority is the origin, taken as it is (the caller
    judges the host); control characters anywhere are refused, never dropped."""
    url = ""
    for text, is_value, already in parts:
        if is_value:
            if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in text):
                raise UnsafePath("a value rendered into the URL contains control characters "
                                 "(CR, LF, TAB, ...)")
            component = _component(url)
            try:
                url += text if component == "origin" else _encoded(text, component, already)
            except UnicodeEncodeError:
                raise UnsafePath("a value rendered into the URL is not valid Unicode") from None
        else:
            url += text
    if any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in url):
        raise UnsafePath("the upstream URL contains whitespace or control characters")
    return url


def literal_base(template: str) -> URL | None:
    """The origin and path prefix fixed by a URL template: everything before the first `{`."""
    cut = min((i for i in (template.find("{{"), template.find("{%")) if i >= 0), default=-1)
    prefix = template if cut < 0 else template[:cut]
    if "://" not in prefix:
        return None
    _, _, rest = prefix.partition("://")
    if not rest or ("/" not in rest and cut >= 0):
        # the host itself is templated: only the scheme is fixed
        return None
    try:
        url = URL(prefix, encoded=True)
    except ValueError:
        return None
    return url if url.host else None


def checked_url(rendered: str, base: URL | None) -> URL:
    """Parse a rendered upstream URL and refuse anything that leaves `base`."""
    try:
        url = URL(rendered, encoded=True)
        host = url.raw_host  # an encoded URL reads its authority (and may fail) only now
        url.port  # noqa: B018
    except (ValueError, TypeError) as exc:
        raise UnsafePath(f"not a valid URL: {exc}") from None
    if url.scheme not in ("http", "https") or not host:
        raise UnsafePath("the upstream URL must be absolute http(s)")
    for piece in url.raw_path.split("/"):
        try:
            _check_segment(unquote(piece, errors="strict"))
        except UnicodeDecodeError:
            raise UnsafePath("the upstream path is not valid UTF-8") from None
    if base is not None:
        if url.origin() != base.origin():
            raise UnsafePath("the upstream URL leaves the configured origin")
        prefix = base.raw_path
        if not url.raw_path.startswith(prefix):
            raise UnsafePath("the upstream URL leaves the configured base path")
    return url
