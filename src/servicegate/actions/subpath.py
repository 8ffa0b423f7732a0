"""Sub-paths that cannot leave the upstream base: splitting, encoding, and the final URL check."""

from __future__ import annotations

from urllib.parse import quote, unquote

from yarl import URL

# RFC 3986 pchar minus nothing that could start a new path, query or fragment.
_SEGMENT_SAFE = "!$&'()*+,;=:@-._~"
_FORBIDDEN_CHARS = frozenset("/\\\x00")


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
    except (ValueError, TypeError) as exc:
        raise UnsafePath(f"not a valid URL: {exc}") from None
    if url.scheme not in ("http", "https") or not url.host:
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
