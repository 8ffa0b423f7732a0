"""Secrets at rest: AES-256-GCM under a key ring, one key id per ciphertext.

A sealed value is `sg1:<key id>:<base64url(nonce | ciphertext | tag)>`. The key id names the
key that sealed it, so a ring holding several keys opens values sealed under any of them while
only the current key seals new ones (`servicegate secrets rotate` adds a key and re-seals).
Each value is bound to where it is stored (the associated data, e.g. the webhook's id): a
ciphertext copied onto another row does not open there.

The ring comes from, in this order:
  SERVICEGATE_SECRETS_KEY  one or more keys, `<id>:<base64 of 32 bytes>` (or just the base64,
                           id `env`), separated by commas; the first one seals
  [secrets] key_file       a JSON file `{"current": id, "keys": [{"id", "key", "created_at"}]}`
                           created with mode 0600 on first start; nodes of a cluster share it
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import fcntl
import json
import os
import re
import secrets
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

ENV = "SERVICEGATE_SECRETS_KEY"
PREFIX = "sg1:"
KEY_BYTES = 32
NONCE_BYTES = 12
_KEY_ID = re.compile(r"[A-Za-z0-9_-]{1,40}")
_CACHE_MAX = 4096


class SecretKeyError(Exception):
    """The key ring cannot be read, or a value cannot be opened with it (no secret in it)."""


def _decode_key(text: str, where: str) -> bytes:
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except (ValueError, binascii.Error):
        raise SecretKeyError(f"{where}: a key must be base64") from None
    if len(key) != KEY_BYTES:
        raise SecretKeyError(f"{where}: a key must be {KEY_BYTES} bytes (base64 of "
                             f"{KEY_BYTES} random bytes), not {len(key)}")
    return key


def _new_key_id() -> str:
    return time.strftime("%Y%m%d") + "-" + secrets.token_hex(4)


def _ring_from_env(value: str) -> tuple[str, dict[str, bytes]]:
    keys: dict[str, bytes] = {}
    current = ""
    for n, part in enumerate(p.strip() for p in value.split(",")):
        if not part:
            continue
        kid, sep, text = part.partition(":")
        if not sep:
            kid, text = "env", part
        if not _KEY_ID.fullmatch(kid):
            raise SecretKeyError(f"{ENV}: key {n + 1}: malformed key id (letters, digits, - _)")
        keys[kid] = _decode_key(text, f"{ENV}: key {kid!r}")
        current = current or kid
    if not keys:
        raise SecretKeyError(f"{ENV} is set but holds no key")
    return current, keys


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path.with_name(path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def _write(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh, indent=2)
        fh.flush()
        os.fsync(fh.fileno())
    os.chmod(tmp, 0o600)  # an existing .tmp keeps its mode through O_CREAT
    os.replace(tmp, path)


def _add_key(data: dict[str, Any]) -> str:
    kid = _new_key_id()
    while any(k["id"] == kid for k in data["keys"]):
        kid = _new_key_id()
    data["keys"].append({"id": kid, "key": base64.b64encode(os.urandom(KEY_BYTES)).decode(),
                         "created_at": time.time()})
    data["current"] = kid
    return kid


def ensure_key_file(path: Path) -> None:
    """Create the key file with one key if there is none (safe against concurrent starts)."""
    if path.exists():
        return
    with _locked(path):
        if not path.exists():
            data: dict[str, Any] = {"current": None, "keys": []}
            _add_key(data)
            _write(path, data)


def add_key(path: Path) -> tuple[str, list[str]]:
    """Make a new current key in the key file; return (new id, the ids kept for opening)."""
    ensure_key_file(path)
    with _locked(path):
        data = json.loads(path.read_text())
        old = [k["id"] for k in data["keys"]]
        new = _add_key(data)
        _write(path, data)
    return new, old


def _ring_from_file(path: Path) -> tuple[str, dict[str, bytes]]:
    try:
        data = json.loads(path.read_text())
        keys = {k["id"]: _decode_key(k["key"], f"{path}: key {k['id']!r}") for k in data["keys"]}
        current = data["current"]
    except SecretKeyError:
        raise
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise SecretKeyError(f"cannot read the secrets key file {path}: {exc}") from None
    if current not in keys:
        raise SecretKeyError(f"{path}: the current key {current!r} is not among its keys")
    return current, keys


class SecretBox:
    """Seals and opens secrets. A box over a key file notices keys added to it by another
    process (`servicegate secrets rotate`) when it meets their id, and starts sealing with the
    new current key within `refresh_every` seconds."""

    def __init__(self, current: str, keys: Mapping[str, bytes], *, path: Path | None = None,
                 refresh_every: float = 5.0) -> None:
        self.path = path
        self.refresh_every = refresh_every
        self._set(current, keys)
        self._mtime = path.stat().st_mtime if path is not None else 0.0
        self._checked = time.monotonic()
        self._opened: dict[tuple[str, bytes], str] = {}

    def _set(self, current: str, keys: Mapping[str, bytes]) -> None:
        self.current = current
        self._ciphers = {kid: AESGCM(key) for kid, key in keys.items()}

    @classmethod
    def load(cls, key_file: Path, environ: Mapping[str, str] | None = None) -> SecretBox:
        """The ring of this process: the environment variable if set, else the key file
        (created on first start)."""
        value = (os.environ if environ is None else environ).get(ENV)
        if value:
            current, keys = _ring_from_env(value)
            return cls(current, keys)
        ensure_key_file(key_file)
        current, keys = _ring_from_file(key_file)
        return cls(current, keys, path=key_file)

    @property
    def key_ids(self) -> list[str]:
        return list(self._ciphers)

    def _reload(self, *, force: bool = False) -> None:
        if self.path is None:
            return
        now = time.monotonic()
        if not force and now - self._checked < self.refresh_every:
            return
        self._checked = now
        try:
            mtime = self.path.stat().st_mtime
        except OSError:
            return
        if mtime != self._mtime:
            current, keys = _ring_from_file(self.path)
            self._set(current, keys)
            self._mtime = mtime

    def seal(self, value: str, context: str) -> str:
        self._reload()
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._ciphers[self.current].encrypt(nonce, value.encode("utf-8"),
                                                     context.encode("utf-8"))
        return f"{PREFIX}{self.current}:" + base64.urlsafe_b64encode(nonce + sealed).decode()

    def open(self, sealed: str, context: str) -> str:
        """The value sealed under `context`; SecretKeyError naming the key id (never the value)
        when it cannot be opened."""
        cache_key = (sealed, context.encode("utf-8"))
        found = self._opened.get(cache_key)
        if found is not None:
            return found
        kid = self.key_id(sealed)
        cipher = self._ciphers.get(kid)
        if cipher is None:
            self._reload(force=True)
            cipher = self._ciphers.get(kid)
            if cipher is None:
                raise SecretKeyError(f"the secret is sealed with key {kid!r}, which is not in "
                                     "the key ring")
        try:
            raw = base64.urlsafe_b64decode(sealed.rsplit(":", 1)[1])
            value = cipher.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], cache_key[1])
        except (ValueError, binascii.Error, InvalidTag):
            raise SecretKeyError(f"the secret sealed with key {kid!r} does not open (damaged, "
                                 "or stored for another row)") from None
        text = value.decode("utf-8")
        if len(self._opened) >= _CACHE_MAX:
            self._opened.clear()
        self._opened[cache_key] = text
        return text

    @staticmethod
    def key_id(sealed: str) -> str:
        if not sealed.startswith(PREFIX) or sealed.count(":") != 2:
            raise SecretKeyError("the stored value is not a sealed secret")
        return sealed.split(":", 2)[1]

    def is_current(self, sealed: str) -> bool:
        return self.key_id(sealed) == self.current


__all__ = ["ENV", "SecretBox", "SecretKeyError", "add_key", "ensure_key_file"]
