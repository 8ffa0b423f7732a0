"""Turn the operator's plain database URLs into async SQLAlchemy URLs."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import URL, make_url


def async_url(url: str) -> URL:
    """`sqlite:///path` -> aiosqlite, `postgresql://` -> asyncpg; explicit drivers are kept."""
    parsed = make_url(url.replace("postgres://", "postgresql://", 1))
    backend = parsed.get_backend_name()
    if backend == "sqlite" and parsed.drivername == "sqlite":
        parsed = parsed.set(drivername="sqlite+aiosqlite")
    elif backend == "postgresql" and parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+asyncpg")
    return parsed


def sync_url(url: str) -> URL:
    """The synchronous twin, for tools that need one."""
    parsed = make_url(url.replace("postgres://", "postgresql://", 1))
    backend = parsed.get_backend_name()
    return parsed.set(drivername="sqlite" if backend == "sqlite" else "postgresql+psycopg")


def ensure_sqlite_dir(url: URL) -> None:
    """Create the directory of a file-backed SQLite database."""
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        Path(url.database).expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)


def redacted(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)
