"""Turn the operator's plain database URLs into async SQLAlchemy URLs."""

from __future__ import annotations

import contextlib
import os
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


def private_sqlite_files(url: URL) -> None:
    """Keep a file-backed SQLite database readable by its owner only (it holds sealed secrets,
    client records, event data): create it 0600 before SQLite does (SQLite would create it
    0644, and creates its `-wal` and `-shm` files with the database file's mode), and take
    group and other access away from one created before."""
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:" \
            or url.database.startswith("file:"):
        return
    path = Path(url.database).expanduser()
    if not path.exists():
        with contextlib.suppress(FileExistsError):
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    for name in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        with contextlib.suppress(OSError):  # absent, or another user's file: left as it is
            if name.stat().st_mode & 0o077:
                os.chmod(name, 0o600)
