"""Templates and expressions inside definitions: sandboxed Jinja2 and JMESPath, compiled once per load.

The syntax, as documented in docs/definitions.md:

- a string that is exactly ``{{ expression }}`` evaluates to the expression's native value
  (a number stays a number, an object stays an object);
- any other string containing ``{{`` or ``{%`` is rendered as a text template;
- an object with the single key ``$jmespath`` evaluates a JMESPath expression over the context;
- objects and lists are walked recursively; everything else is a literal.
"""

from servicegate.expressions.compiler import (
    Condition,
    Encoded,
    ExpressionError,
    MissingValue,
    Part,
    PartsTemplate,
    TemplateFailure,
    Value,
    compile_condition,
    compile_parts,
    compile_text,
    compile_value,
    constant_text,
    is_literal,
)

__all__ = [
    "Condition",
    "Encoded",
    "ExpressionError",
    "MissingValue",
    "Part",
    "PartsTemplate",
    "TemplateFailure",
    "Value",
    "compile_condition",
    "compile_parts",
    "compile_text",
    "compile_value",
    "constant_text",
    "is_literal",
]
