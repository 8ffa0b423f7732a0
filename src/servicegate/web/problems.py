"""Problems as HTTP responses: every error the gateway answers goes through here."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from servicegate.problems import Problem, problem_body
from servicegate.web.responses import dumps

MEDIA_TYPE = "application/problem+json"

# The name python handlers raised before `servicegate.problems.Problem` existed; kept so
# their code keeps working.
ProblemError = Problem


def request_id(request: Request) -> str | None:
    return request.scope.get("state", {}).get("request_id")


def problem_response(request: Request, status: int, detail: str, *,
                     headers: dict[str, str] | None = None, **kwargs: Any) -> Response:
    body = problem_body(status, detail, instance=request.url.path,
                        trace_id=request_id(request), **kwargs)
    return Response(dumps(body), status_code=status, headers=headers, media_type=MEDIA_TYPE)


def response_for(request: Request, problem: Problem) -> Response:
    body = problem.body(instance=request.url.path, trace_id=request_id(request))
    return Response(dumps(body), status_code=problem.status, headers=problem.headers,
                    media_type=MEDIA_TYPE)
