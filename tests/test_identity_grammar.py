"""The filter language, table-driven: every operator and function parses to the expected tree,
and every error names what is wrong and the character position (0-based)."""

import datetime as dt

import pytest

from servicegate.identity.odata import Limits, QueryError, parse
from servicegate.identity.odata.ast import BoolOp, Call, Compare, In, Lambda, Literal, Not, Path
from servicegate.identity.odata.printer import to_text
from servicegate.identity.ordering import paging, parse_orderby
from servicegate.identity.properties import identity_properties
from servicegate.identity.sqlbuild import compile_filter


def P(*segments):
    return Path(tuple(segments))


def S(value):
    return Literal("string", value)


def N(value):
    return Literal("int", value)


PARSES = [
    ("fullname eq 'Anders'", Compare("eq", P("fullname"), S("Anders"))),
    ("fullname ne 'Anders'", Compare("ne", P("fullname"), S("Anders"))),
    ("juridicalType gt 0", Compare("gt", P("juridicalType"), N(0))),
    ("juridicalType ge 1", Compare("ge", P("juridicalType"), N(1))),
    ("juridicalType lt 2", Compare("lt", P("juridicalType"), N(2))),
    ("juridicalType le -1", Compare("le", P("juridicalType"), N(-1))),
    ("juridicalType EQ 1", Compare("eq", P("juridicalType"), N(1))),
    ("x eq 1.5", Compare("eq", P("x"), Literal("float", 1.5))),
    ("birthDate eq 1980-05-01",
     Compare("eq", P("birthDate"), Literal("date", dt.date(1980, 5, 1)))),
    ("a eq true", Compare("eq", P("a"), Literal("bool", True))),
    ("a eq false", Compare("eq", P("a"), Literal("bool", False))),
    ("a eq null", Compare("eq", P("a"), Literal("null", None))),
    ("name/lastName eq 'O''Brien'", Compare("eq", P("name", "lastName"), S("O'Brien"))),
    ("'Lund' eq city", Compare("eq", S("Lund"), P("city"))),
    ("city in ('Lund', 'Malmö')", In(P("city"), (S("Lund"), S("Malmö")))),
    ("a eq 1 and b eq 2", BoolOp("and", Compare("eq", P("a"), N(1)), Compare("eq", P("b"), N(2)))),
    ("a eq 1 or b eq 2", BoolOp("or", Compare("eq", P("a"), N(1)), Compare("eq", P("b"), N(2)))),
    ("a eq 1 or b eq 2 and c eq 3",
     BoolOp("or", Compare("eq", P("a"), N(1)),
            BoolOp("and", Compare("eq", P("b"), N(2)), Compare("eq", P("c"), N(3))))),
    ("(a eq 1 or b eq 2) and c eq 3",
     BoolOp("and", BoolOp("or", Compare("eq", P("a"), N(1)), Compare("eq", P("b"), N(2))),
            Compare("eq", P("c"), N(3)))),
    ("not a eq 1", Not(Compare("eq", P("a"), N(1)))),
    ("not (a eq 1)", Not(Compare("eq", P("a"), N(1)))),
    ("contains(fullname, 'son')", Call("contains", (P("fullname"), S("son")))),
    ("startswith(fullname,'Ander')", Call("startswith", (P("fullname"), S("Ander")))),
    ("endswith(fullname,'sen')", Call("endswith", (P("fullname"), S("sen")))),
    ("tolower(fullname) eq 'x'", Compare("eq", Call("tolower", (P("fullname"),)), S("x"))),
    ("toupper(city) eq 'LUND'", Compare("eq", Call("toupper", (P("city"),)), S("LUND"))),
    ("StartsWith(tolower(fullname),'and')",
     Call("startswith", (Call("tolower", (P("fullname"),)), S("and")))),
    ("addresses/any(a: a/city eq 'Lund')",
     Lambda("any", P("addresses"), "a", Compare("eq", P("a", "city"), S("Lund")))),
    ("addresses/all(x: x/countryCode eq 'SE')",
     Lambda("all", P("addresses"), "x", Compare("eq", P("x", "countryCode"), S("SE")))),
    ("addresses/any()", Lambda("any", P("addresses"), None, None)),
    ("  fullname   eq\t'a b'  ", Compare("eq", P("fullname"), S("a b"))),
]


@pytest.mark.parametrize(("text", "tree"), PARSES, ids=[t for t, _ in PARSES])
def test_parses(text, tree):
    assert parse(text) == tree
    assert parse(to_text(tree)) == tree


def test_positions_are_recorded():
    tree = parse("fullname eq 'x' and  contains(city,'L')")
    assert tree.pos == 16 and tree.left.pos == 9 and tree.left.left.pos == 0
    assert tree.right.pos == 21 and tree.right.args[0].pos == 30


def test_empty_filter_is_no_filter():
    assert parse("") is None and parse("   ") is None


SYNTAX_ERRORS = [
    ("fullname eq 'Anders", "unterminated string", 12),
    ("(fullname eq 'a'", "missing ')'", 16),
    ("fullname eq 'a')", "unbalanced ')'", 15),
    ("((a eq 1) or b eq 2", "missing ')'", 19),
    ("fullname eq", "unexpected end", 11),
    ("fullname 'a'", "expected 'and', 'or' or the end", 9),
    ("fullname eq 'a' and", "unexpected end", 19),
    ("and eq 1", "expected a property, value or function before 'and'", 0),
    ("fullname eq 'a' # 1", "unexpected character '#'", 16),
    ("frobnicate(fullname)", "unknown function 'frobnicate'", 0),
    ("contains(fullname)", "takes 2 arguments, not 1", 0),
    ("tolower(a, b) eq 'x'", "takes 1 argument, not 2", 0),
    ("birthDate eq 1980-13-01", "invalid date", 13),
    ("a eq 12abc", "malformed number", 5),
    ("a in 1", "expected '(' after 'in'", 5),
    ("a in (b)", "'in' takes a list of values", 6),
    ("a in ('x' 'y')", "expected ')' to close the 'in' list", 10),
    ("addresses/all()", "all() needs a condition", 10),
    ("addresses/any(a a/city eq 'x')", "expected ':' after the variable", 16),
    ("addresses/any(a: a/city eq 'x'", "expected ')' to close any(", 30),
    ("name/ eq 'x'", "expected a property name after '/'", 6),
    ("a eq 'x\x00'", "NUL character", 7),
    ("a eq 99999999999999999999", "number out of range", 5),
    ("birthDate eq 2020-01-01T00:00:00Z", "dates are written YYYY-MM-DD", 13),
    ("birthDate lt 2020-01-01 12:30", "e.g. 2020-01-01", 13),
]


@pytest.mark.parametrize(("text", "message", "position"), SYNTAX_ERRORS,
                         ids=[t for t, _, _ in SYNTAX_ERRORS])
def test_syntax_errors(text, message, position):
    with pytest.raises(QueryError) as err:
        parse(text)
    assert message in err.value.message
    assert err.value.position == position


def check(text):
    return compile_filter(parse(text), identity_properties(), "sqlite")


SEMANTIC_ERRORS = [
    ("juridicalType eq 'x'", "juridicalType is a whole number; 'x' is not", 17),
    ("juridicalType eq 99999", "out of range", 17),
    ("fullname eq 1", "name/fullName is text; put the value in quotes", 12),
    ("birthDate eq 'yesterday'", "is a date (YYYY-MM-DD)", 13),
    ("birthDate gt 5", "is a date", 13),
    ("nosuch eq 'x'", "unknown property 'nosuch'", 0),
    ("fulname eq 'x'", "did you mean 'fullname'", 0),
    ("fullname eq 'a' and NAME/lastname eq 'b' and name/nope eq 'c'", "unknown property", 45),
    ("addresses eq 'x'", "'addresses' is a collection", 0),
    ("fullname/any(a: a/city eq 'x')", "is not a collection", 0),
    ("addresses/any(a: a/nope eq 'x')", "unknown property 'nope' of addresses", 17),
    ("addresses/any(a: a eq 'x')", "use a property of 'a'", 17),
    ("addresses/any(a: addresses/any(b: b/city eq 'x'))", "cannot be nested", 17),
    ("fullname eq lastname", "two properties cannot be compared", 12),
    ("'a' eq 'b'", "two values given", 4),
    ("fullname gt null", "null can only be compared with eq or ne", 12),
    ("city in ('Lund', null)", "null is not allowed in an 'in' list", 17),
    ("fullname", "'fullname' alone is not a condition", 0),
    ("tolower(fullname)", "tolower() gives text, not a condition", 0),
    ("'x'", "a value alone is not a condition", 0),
    ("contains(juridicalType, 'x')", "contains() needs text; juridicalType is a whole number", 9),
    ("contains(fullname, 1)", "second argument of contains() must be a quoted string", 19),
    ("contains('x', fullname)", "first argument of contains() must be a property", 9),
    ("tolower(birthDate) eq 'x'", "tolower() needs text", 8),
    ("contains(fullname,'a') eq 'x'", "contains() is a condition, not a value", 0),
    ("1 in (1, 2)", "left side of 'in' must be a property", 0),
]


@pytest.mark.parametrize(("text", "message", "position"), SEMANTIC_ERRORS,
                         ids=[t for t, _, _ in SEMANTIC_ERRORS])
def test_semantic_errors(text, message, position):
    with pytest.raises(QueryError) as err:
        check(text)
    assert message in err.value.message, err.value.message
    assert err.value.position == position


def test_property_names_are_case_insensitive_and_aliased():
    for text in ("FULLNAME eq 'x'", "name/FullName eq 'x'", "Name/fullname eq 'x'",
                 "LastName eq 'x'", "ZIPCODE eq '1'", "Addresses/Any(A: a/CITY eq 'x')"):
        check(text)


def test_limits():
    limits = Limits(max_length=100, max_depth=3, max_terms=3, max_in_values=2)
    with pytest.raises(QueryError, match="longer than 100") as err:
        parse("a eq '" + "x" * 100 + "'", limits)
    assert err.value.position == 100
    with pytest.raises(QueryError, match="nested too deeply") as err:
        parse("((((a eq 1))))", limits)
    assert err.value.position == 3
    with pytest.raises(QueryError, match="too many conditions") as err:
        parse("a eq 1 and b eq 2 and c eq 3 and d eq 4", limits)
    assert err.value.position == 35
    with pytest.raises(QueryError, match="too many values"):
        parse("a in (1, 2, 3)", limits)
    parse("a eq 1 and b eq 2 and c eq 3", limits)


def test_default_limits_reject_a_deep_or_long_filter():
    with pytest.raises(QueryError, match="nested too deeply"):
        parse("(" * 200 + "a eq 1" + ")" * 200)
    with pytest.raises(QueryError, match="longer than 2048"):
        parse("fullname eq '" + "x" * 2100 + "'")
    with pytest.raises(QueryError, match="too many conditions"):
        parse(" or ".join(f"fullname eq '{i}'" for i in range(65)))


ORDERBY_ERRORS = [
    ("nosuch", "unknown property 'nosuch'", 0),
    ("fullname, nosuch desc", "unknown property 'nosuch'", 10),
    ("fullname sideways", "expected asc or desc", 9),
    ("fullname desc,", "a property is missing after ','", 13),
    ("city", "cannot order by addresses/city", 0),
    ("full name", "expected asc or desc, not 'name'", 5),
    ("fullname;drop", "expected 'property [asc|desc]'", 0),
]


@pytest.mark.parametrize(("text", "message", "position"), ORDERBY_ERRORS,
                         ids=[t for t, _, _ in ORDERBY_ERRORS])
def test_orderby_errors(text, message, position):
    with pytest.raises(QueryError) as err:
        parse_orderby(text, identity_properties())
    assert message in err.value.message and err.value.parameter == "$orderby"
    assert err.value.position == position


def test_orderby_keys():
    keys = parse_orderby("fullname desc, IDNUMBER,birthDate asc", identity_properties())
    assert [(k.prop.path, k.descending) for k in keys] == [
        ("name/fullName", True), ("idnumber", False), ("birthDate", False)]


@pytest.mark.parametrize(("skip", "top", "message", "parameter", "position"), [
    ("-1", None, "must not be negative", "$skip", 0),
    ("1.5", None, "must be a whole number", "$skip", 1),
    (None, "101", "must be at most 100", "$top", 0),
    (None, "ten", "must be a whole number", "$top", 0),
    (None, "-5", "must not be negative", "$top", 0),
    (None, "١٢", "must be a whole number", "$top", 0),
    ("", None, "is empty", "$skip", 0),
    (None, "", "is empty", "$top", 0),
])
def test_paging_errors(skip, top, message, parameter, position):
    with pytest.raises(QueryError) as err:
        paging(skip, top)
    assert message in err.value.message and err.value.parameter == parameter
    assert err.value.position == position


def test_paging_defaults():
    assert paging(None, None) == (0, 25)
    assert paging("40", "100") == (40, 100)
    assert paging("0", "0") == (0, 0)


@pytest.mark.parametrize("text", ["not endswith(fullname, 'sen')",
                                  "not startswith(fullname, 'Ander')",
                                  "not contains(fullname, 'der')"])
def test_negated_text_functions_compile_without_deprecated_operators(text):
    """SQLite's GLOB is a comparison (a boolean), so NOT applies to it as SQLAlchemy expects:
    a text-typed operand of NOT is deprecated and will raise in a future SQLAlchemy."""
    import warnings

    from sqlalchemy.exc import SADeprecationWarning

    with warnings.catch_warnings():
        warnings.simplefilter("error", SADeprecationWarning)
        negated, plain = str(check(text)), str(check(text.removeprefix("not ")))
    assert negated != plain
