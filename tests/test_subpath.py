"""Property tests: no sub-path and no templated value can leave the configured upstream base."""

from urllib.parse import quote, unquote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from yarl import URL

from servicegate.actions.subpath import (
    UnsafePath,
    assemble,
    checked_url,
    encode_segments,
    literal_base,
    split_raw,
)
from servicegate.expressions import Encoded, compile_parts

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


URL_TEMPLATE = compile_parts("http://h/base/{{ v }}/end?q={{ v }}&r=1#{{ v }}", "url")
CONTROL = {chr(c) for c in range(0x20)} | {"\x7f"}


@given(st.text(max_size=40))
def test_a_rendered_value_lands_whole_in_its_component(value):
    """Whatever a value holds, the URL keeps the template's structure: the value is one path
    piece, one query value and the fragment, or the URL is refused for control characters."""
    try:
        text = assemble(URL_TEMPLATE.render({"v": value}))
    except UnsafePath:
        assert set(value) & CONTROL or any(0xD800 <= ord(ch) <= 0xDFFF for ch in value)
        return
    assert not set(text) & CONTROL and " " not in text
    url = URL(text, encoded=True)
    assert url.host == "h"
    assert unquote(url.raw_path, errors="strict") == f"/base/{value}/end"
    assert [(k, v) for k, v in url.query.items()] == [("q", value), ("r", "1")]
    assert unquote(url.raw_fragment) == value


def test_encoded_values_keep_their_escapes():
    template = compile_parts("http://h/b/{{ sp }}?s={{ sp }}&q={{ v | urlquote }}", "url")
    text = assemble(template.render({"sp": Encoded("a%20b/c=d&e"), "v": "x y&z"}))
    assert text == "http://h/b/a%20b/c=d&e?s=a%20b/c%3Dd%26e&q=x%20y%26z"


@pytest.mark.parametrize("value", ["a\rb", "a\nb", "a\tb", "\x00", "\x7f"])
def test_control_characters_in_values_are_refused(value):
    with pytest.raises(UnsafePath, match="control characters"):
        assemble(URL_TEMPLATE.render({"v": value}))


def test_a_value_in_the_origin_is_taken_as_written():
    template = compile_parts("{{ base }}/x/{{ v }}", "url")
    assert assemble(template.render({"base": "http://h:81/api", "v": "a?b"})) == \
        "http://h:81/api/x/a%3Fb"
    with pytest.raises(UnsafePath):
        assemble(template.render({"base": "http://h /api", "v": "a"}))
