"""Property test: the query parser of the `/services` path (`query_pairs`) gives exactly what
`urllib.parse.parse_qsl(..., keep_blank_values=True)` gives, fast path included."""

from urllib.parse import parse_qsl

from hypothesis import given, settings
from hypothesis import strategies as st

from servicegate.web.invocation import query_pairs

pieces = st.sampled_from(["async", "true", "=", "&", "&&", "%", "%20", "%zz", "+", "a", "é",
                          ";", "==", "x=1", "", "?", "#"])
queries = st.one_of(st.lists(pieces, max_size=10).map("".join),
                    st.text(alphabet=st.characters(max_codepoint=0xFF), max_size=30))


@settings(max_examples=500)
@given(queries)
def test_query_pairs_are_parse_qsl(query):
    raw = query.encode("latin-1")
    assert query_pairs({"query_string": raw}) == parse_qsl(query, keep_blank_values=True)


def test_common_queries():
    assert query_pairs({"query_string": b"async=true"}) == [("async", "true")]
    assert query_pairs({"query_string": b"a&b=&=c&&d=1=2"}) == [
        ("a", ""), ("b", ""), ("", "c"), ("d", "1=2")]
    assert query_pairs({"query_string": b"q=a+b%26c"}) == [("q", "a b&c")]
    assert query_pairs({"query_string": b""}) == []
