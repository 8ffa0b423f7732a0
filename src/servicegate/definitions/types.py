"""Field types of definition files whose JSON Schema differs from their Python type."""

from __future__ import annotations

from typing import Annotated

from pydantic import BeforeValidator, PlainSerializer, WithJsonSchema

from servicegate.durations import format_duration, parse_duration

Duration = Annotated[
    float,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration),
    WithJsonSchema({
        "anyOf": [
            {"type": "number", "minimum": 0, "description": "seconds"},
            {"type": "string", "pattern": r"^\s*\d+(\.\d+)?\s*(ms|s|m|h|d)\s*$",
             "examples": ["500ms", "5s", "1m", "2h"]},
        ]
    }),
]
