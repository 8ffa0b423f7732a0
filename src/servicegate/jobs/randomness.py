"""Random hex for identifiers on hot paths: `os.urandom` read in blocks, not per id.

Each id still gets 128 bits from the OS's CSPRNG, but one system call serves many ids. A
forked child discards the block it inherited (two processes must never hand out the same bits).
"""

from __future__ import annotations

import os

_BLOCK = 4096  # bytes: 256 ids of 16 bytes


class _Pool:
    __slots__ = ("hex", "offset")

    def __init__(self) -> None:
        self.hex = ""
        self.offset = 0

    def reset(self) -> None:
        self.hex = ""
        self.offset = 0

    def take(self, nbytes: int) -> str:
        width = 2 * nbytes
        if self.offset + width > len(self.hex):
            self.hex = os.urandom(max(_BLOCK, nbytes)).hex()
            self.offset = 0
        start = self.offset
        self.offset = start + width
        return self.hex[start:start + width]


_pool = _Pool()
os.register_at_fork(after_in_child=_pool.reset)


def random_hex(nbytes: int = 16) -> str:
    """`secrets.token_hex(nbytes)` in effect: `nbytes` unpredictable bytes as hex."""
    return _pool.take(nbytes)
