"""Problems an action answers: always naming the definition (and the step, in a pipeline)."""

from __future__ import annotations

from typing import Any

from servicegate.web.problems import ProblemError


def action_problem(status: int, detail: str, definition: str, **extensions: Any) -> ProblemError:
    return ProblemError(status, detail, definition=definition, **extensions)
