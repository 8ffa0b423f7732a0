"""RawResponse builds exactly what Starlette's Response would (status, body, raw headers)."""

from hypothesis import given
from hypothesis import strategies as st
from starlette.responses import Response

from servicegate.web.dispatch import RawResponse

_names = st.sampled_from(["X-A", "etag", "Content-Type", "content-length", "Set-Cookie",
                          "Cache-Control", "x-b"])
_values = st.text(st.characters(min_codepoint=32, max_codepoint=255), max_size=12)
_types = st.sampled_from(["application/json", "text/plain", "text/html; charset=latin-1",
                          "TEXT/CSV", "text/xml; Charset=UTF-8", "application/octet-stream"])


@given(body=st.binary(max_size=64), status=st.sampled_from([200, 201, 404, 500, 502]),
       headers=st.dictionaries(_names, _values, max_size=4), media_type=_types)
def test_same_as_starlette(body, status, headers, media_type):
    ours = RawResponse(body, status, headers, media_type)
    theirs = Response(body, status_code=status, headers=headers, media_type=media_type)
    assert (ours.status_code, ours.body, ours.raw_headers, ours.background) == (
        theirs.status_code, theirs.body, theirs.raw_headers, theirs.background)
