"""How the gateway opens its own SQLite file: one list for every connection it makes (the
engine's pool, the intake writers of storage/appends.py, the search readers of
storage/reads.py)."""

from __future__ import annotations

# how long a connection waits for another one's write lock before it fails (SQLITE_BUSY)
BUSY_TIMEOUT_MS = 10_000


def connection_pragmas(*, busy_timeout_ms: int = BUSY_TIMEOUT_MS) -> list[str]:
    """The PRAGMA statements (without the keyword) a writing connection runs first: the
    write-ahead log (readers never block the writer), fsync at checkpoints only (a commit
    survives a process crash; a power loss may lose the last ones), foreign keys enforced."""
    return ["journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON",
            f"busy_timeout={busy_timeout_ms}"]
