"""Property tests: no sub-path and no templated value can leave the configured upstream base."""

from urllib.parse import quote, unquote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from yarl import URL

from servicegate.actions.subpath import (
    UnsafePath,
    checked_url,
    encode_segments,
    literal_base,
    split_raw,
)

BASE_TEMPLATE = "http://upstream.internal:8080/api/v1/{{ subpath }}"
BASE = literal_base(BASE_TEMPLATE)
nasty = st.sampled_from(["..", ".", "%2e%2e", "%2E%2e", "%2f", "%2F", "%5c", "\\", "/", "//",
                         "http:", "https://evil.example", "?", "#", "%00", "%", "%zz", "@", ";",
                         "evil.example", " ", "%252e%252e", "~", ":", "%3A"])
raw_paths = st.lists(st.one_of(nasty, st.text(min_size=0, max_size=12)), max_size=8).map(
    lambda parts: "/".join(parts))


@settings(max_examples=400, deadline=None)
@given(raw_paths)
def test_split_and_join_stays_under_base(raw):
    try:
        segments = split_raw(raw)
    except UnsafePath:
        return
    for segment in segments:
        assert segment not in (".", "..") and "/" not in segment and "\\" not in segment
    rendered = BASE_TEMPLATE.replace("{{ subpath }}", encode_segments(segments))
    url = checked_url(rendered, BASE)
    assert url.origin() == URL("http://upstream.internal:8080")
    assert url.raw_path.startswith("/api/v1/")
    decoded = [unquote(p) for p in url.raw_path.split("/")]
    assert ".." not in decoded and "." not in decoded
    # the segments survive the trip exactly
    assert [unquote(p) for p in url.raw_path.split("/")[3:] if p] == segments


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=40))
def test_any_templated_value_is_checked(value):
    rendered = "http://upstream.internal:8080/api/v1/" + value
    try:
        url = checked_url(rendered, BASE)
    except UnsafePath:
        return
    assert url.host == "upstream.internal" and url.port == 8080
    assert url.raw_path.startswith("/api/v1/")
    for piece in url.raw_path.split("/"):
        assert unquote(piece) not in (".", "..")


@pytest.mark.parametrize("raw", ["../etc", "a/%2e%2e/b", "a%2Fb", "a%5cb", "%00", "%ff"])
def test_unsafe_raw_paths(raw):
    with pytest.raises(UnsafePath):
        split_raw(raw)


def test_encoding_round_trip():
    assert encode_segments(["a b", "ä", "x?y#z"]) == "a%20b/%C3%A4/x%3Fy%23z"
    assert split_raw("a%20b//%C3%A4/") == ["a b", "ä"]
    assert quote("x") == "x"


@pytest.mark.parametrize("template,base", [
    ("http://h/a/{{ subpath }}", "http://h/a/"),
    ("https://h:8443/x?y={{ q }}", "https://h:8443/x?y="),
    ("http://127.0.0.1:8080/healthz", "http://127.0.0.1:8080/healthz"),
    ("{{ env.URL }}/x", None),
    ("http://{{ env.HOST }}/x", None),
    ("http://h{{ env.SUFFIX }}", None),
])
def test_literal_base(template, base):
    found = literal_base(template)
    assert (str(found) if found else None) == base


@pytest.mark.parametrize("rendered", ["http://evil.example/api/v1/x", "http://upstream.internal:8080/other",
                                      "http://upstream.internal:8081/api/v1/x",
                                      "ftp://upstream.internal:8080/api/v1/x",
                                      "http://upstream.internal:8080/api/v1/../../admin"])
def test_leaving_the_base_is_refused(rendered):
    with pytest.raises(UnsafePath):
        checked_url(rendered, BASE)
