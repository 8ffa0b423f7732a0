"""Template and expression syntax (parser-level, hypothesis for literals)."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from servicegate.expressions import (
    ExpressionError,
    TemplateFailure,
    compile_condition,
    compile_value,
    is_literal,
)

VARS = {"body": {"n": 2, "items": [{"id": 1}, {"id": 2}]}, "query": {"q": "x"}, "steps": {}}


def test_whole_expression_keeps_native_type():
    assert compile_value("{{ body.n * 2 }}", "v").render(VARS) == 4
    assert compile_value("{{ body }}", "v").render(VARS) == VARS["body"]
    assert compile_value(" {{ [1, 2] }} ", "v").render(VARS) == [1, 2]


def test_text_templates_render_strings():
    assert compile_value("n={{ body.n }}", "v").render(VARS) == "n=2"
    assert compile_value("{{ query.q }}{{ body.n }}", "v").render(VARS) == "x2"
    assert compile_value("{% if body.n %}yes{% endif %}", "v").render(VARS) == "yes"


def test_jmespath_and_nesting():
    value = compile_value({"ids": {"$jmespath": "body.items[*].id"}, "k": ["{{ body.n }}", 3]},
                          "v")
    assert value.render(VARS) == {"ids": [1, 2], "k": [2, 3]}


def test_filters():
    assert compile_value("{{ body | tojson }}", "v").render(VARS) == (
        '{"n":2,"items":[{"id":1},{"id":2}]}')
    assert compile_value("{{ 'a/b c' | urlquote }}", "v").render(VARS) == "a%2Fb%20c"
    assert compile_value("{{ 'hi' | b64encode }}", "v").render(VARS) == "aGk="


@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text().filter(
    lambda s: "{{" not in s and "{%" not in s),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.text(max_size=5).filter(lambda k: k != "$jmespath"), inner, max_size=3),
    max_leaves=10))
def test_literals_render_unchanged(value):
    compiled = compile_value(value, "v")
    assert is_literal(compiled)
    assert compiled.render({}) == value


@pytest.mark.parametrize("source", ["{{ 1 + }}", "{% if %}", {"$jmespath": "a[["},
                                    {"$jmespath": "a", "other": 1}, {"$jmespath": 3}])
def test_compile_errors_name_the_location(source):
    with pytest.raises(ExpressionError, match=r"^action\.body"):
        compile_value(source, "action.body")


def test_undefined_and_sandbox_fail_at_render():
    with pytest.raises(TemplateFailure):
        compile_value("{{ body.nope.deeper }}", "v").render(VARS)
    with pytest.raises(TemplateFailure):
        compile_value("{{ body.__class__ }}", "v").render(VARS)
    with pytest.raises(TemplateFailure):
        compile_value("{{ ''.__class__.__mro__ }}", "v").render(VARS)


def test_conditions():
    assert compile_condition("body.n > 1", "w").holds(VARS)
    assert not compile_condition("{{ body.n > 5 }}", "w").holds(VARS)
    assert compile_condition("steps.a is not defined", "w").holds(VARS)
    with pytest.raises(ExpressionError):
        compile_condition("body.n >", "w")
