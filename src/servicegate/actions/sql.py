"""`sql`: one statement against a named database, parameters always bound, read-only by default."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import re
import uuid
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal

import structlog
from pydantic import Field, field_validator
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from servicegate.actions.base import Action, ActionResult, ActionSpec, ActionType, BuildContext, Invocation
from servicegate.actions.errors import action_problem
from servicegate.actions.registry import register
from servicegate.durations import Duration
from servicegate.expressions import compile_value

if TYPE_CHECKING:  # the asyncio extension pulls in the ORM: `servicegate check` does without it
    from sqlalchemy.ext.asyncio import AsyncConnection
from servicegate.problems import Problem

log = structlog.get_logger("servicegate.actions.sql")
_TEMPLATE_MARKERS = re.compile(r"\{\{|\{%")
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_ARGUMENT = re.compile(r"query argument \$(\d+)")
_REASON = re.compile(r"\(([^()]*)\)$")  # the driver's reason, without the value it quotes


class SqlSpec(ActionSpec):
    """Run one SQL statement with named bound parameters (`:name`)."""

    type: Literal["sql"]
    database: str = Field(description="A name from [databases.<name>] in the configuration")
    query: str = Field(description="SQL with :named parameters; never templated")
    params: dict[str, Any] = Field(default_factory=dict,
                                   description="Values for the :named parameters (templated)")
    result: Literal["rows", "one", "scalar", "rowcount"] = "rows"
    write: bool = Field(False, description="Commit; otherwise the statement is rolled back")
    timeout: Duration | None = Field(None, description="Statement timeout (default from the "
                                     "database's configuration)")

    @field_validator("query")
    @classmethod
    def _no_formatting(cls, value: str) -> str:
        if _TEMPLATE_MARKERS.search(value):
            raise ValueError("the query must not contain templates; "
                             "use :named parameters and `params`")
        return value


class SqlAction(Action):
    def __init__(self, spec: SqlSpec, ctx: BuildContext, where: str) -> None:
        self.definition = ctx.definition
        configured = ctx.settings.databases
        if spec.database not in configured:
            known = ", ".join(sorted(configured)) or "none configured"
            raise ValueError(f"{where}.database: unknown database {spec.database!r} ({known})")
        self.database = spec.database
        self.statement = text(spec.query)
        needed = set(self.statement.compile().params)
        given = set(spec.params)
        wrong = []
        if needed - given:
            wrong.append("missing values for " + ", ".join(f":{n}" for n in sorted(needed - given)))
        if given - needed:
            wrong.append("not used by the query: " + ", ".join(sorted(given - needed)))
        if wrong:
            raise ValueError(f"{where}.params: {'; '.join(wrong)}")
        self.params = compile_value(spec.params, f"{where}.params")
        self.result = spec.result
        self.write = spec.write
        self.timeout = spec.timeout or configured[spec.database].statement_timeout

    async def run(self, invocation: Invocation) -> ActionResult:
        params = self.params.render(invocation.variables)
        for name, value in params.items():
            # No database binds a larger integer (SQLite raises OverflowError, PostgreSQL
            # refuses it), and such a value comes from the request: the caller's mistake.
            if type(value) is int and not _INT64_MIN <= value <= _INT64_MAX:
                raise action_problem(400, f"parameter :{name} of definition "
                                     f"{self.definition!r} is out of the range of a 64-bit "
                                     "integer", self.definition, parameter=name)
        engine = invocation.services.databases.engine(self.database)
        try:
            async with engine.connect() as conn:
                body = await self._execute(conn, params)
        except TimeoutError:
            raise action_problem(504, f"definition {self.definition!r}: the statement did not "
                                 f"finish within {self.timeout:g}s", self.definition) from None
        except DBAPIError as exc:
            if str(getattr(exc.orig, "sqlstate", "")).startswith("22"):
                raise self._data_problem(exc, engine.dialect) from None
            if "statement timeout" in str(exc.orig) or "canceling statement" in str(exc.orig):
                raise action_problem(504, f"definition {self.definition!r}: the statement did "
                                     f"not finish within {self.timeout:g}s",
                                     self.definition) from None
            log.warning("sql_failed", definition=self.definition, error=type(exc.orig).__name__,
                        message=str(exc.orig)[:500], trace_id=invocation.context.request_id)
            raise action_problem(502, f"definition {self.definition!r}: the database refused "
                                 f"the statement ({type(exc.orig).__name__})",
                                 self.definition) from None
        except SQLAlchemyError as exc:
            log.warning("sql_failed", definition=self.definition, error=type(exc).__name__,
                        trace_id=invocation.context.request_id)
            raise action_problem(502, f"definition {self.definition!r}: database error "
                                 f"({type(exc).__name__})", self.definition) from None
        if self.result == "one" and body is None:
            raise action_problem(404, f"definition {self.definition!r}: no matching row",
                                 self.definition)
        return ActionResult(200, {}, body)

    async def _execute(self, conn: AsyncConnection, params: dict[str, Any]) -> Any:
        dialect = conn.dialect.name
        read_only_sqlite = dialect == "sqlite" and not self.write
        async with asyncio.timeout(self.timeout):
            transaction = await conn.begin()
            try:
                if dialect == "postgresql":
                    if not self.write:
                        await conn.exec_driver_sql("SET TRANSACTION READ ONLY")
                    ms = max(1, int(self.timeout * 1000))
                    await conn.exec_driver_sql(f"SET LOCAL statement_timeout = {ms}")
                elif read_only_sqlite:
                    await conn.exec_driver_sql("PRAGMA query_only = ON")
                cursor = await conn.execute(self.statement, params)
                body = self._shape(cursor)
                if self.write:
                    await transaction.commit()
                else:
                    await transaction.rollback()
            finally:
                if transaction.is_active:
                    await transaction.rollback()
                if read_only_sqlite:
                    await conn.exec_driver_sql("PRAGMA query_only = OFF")
                    await conn.rollback()
        return body

    def _data_problem(self, exc: DBAPIError, dialect: Any) -> Problem:
        """PostgreSQL's data exceptions (SQLSTATE class 22: a value out of the column type's
        range, not of its type, a division by zero) come from the values the request gave:
        a 400 naming the parameter when the driver says which (asyncpg: `$n`)."""
        message = str(exc.orig)
        reason = _REASON.search(message)
        extensions: dict[str, Any] = {}
        argument = _ARGUMENT.search(message)
        if argument:
            names = self.statement.compile(dialect=dialect).positiontup or []
            index = int(argument.group(1)) - 1
            if 0 <= index < len(names):
                extensions["parameter"] = names[index]
        what = (f"parameter :{extensions['parameter']}" if extensions
                else "a value of the statement")
        detail = reason.group(1) if reason else message.splitlines()[0][:200]
        return action_problem(400, f"{what} of definition {self.definition!r} does not fit "
                              f"the statement: {detail}", self.definition, **extensions)

    def _shape(self, cursor: Any) -> Any:
        if self.result == "rowcount":
            return {"rowcount": cursor.rowcount}
        if not cursor.returns_rows:
            return None if self.result != "rows" else []
        if self.result == "scalar":
            row = cursor.first()
            return None if row is None else _json(row[0])
        if self.result == "one":
            row = cursor.first()
            return None if row is None else {k: _json(v) for k, v in row._mapping.items()}
        return [{k: _json(v) for k, v in row._mapping.items()} for row in cursor]


def _json(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, bytes | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    return value


TYPE = register(ActionType("sql", SqlSpec, SqlAction))
