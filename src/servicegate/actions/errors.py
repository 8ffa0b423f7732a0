"""Problems an action answers: always naming the definition (and the step, in a pipeline)."""

from __future__ import annotations

from typing import Any

from servicegate.problems import Problem


def action_problem(status: int, detail: str, definition: str, **extensions: Any) -> Problem:
    return Problem(status, detail, definition=definition, **extensions)
