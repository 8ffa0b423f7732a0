"""The gateway's token-signing keys: ES256, generated on first start, kept on disk (0600).

Layout of `[auth] signing_key_path`:
  keyset.json        current key id and every published public key (with retirement time)
  <kid>.pem          the private key of the current key (mode 0600)

`servicegate keys rotate` makes a new current key; the previous public key stays published
until the longest-lived token it signed has expired. Nodes of a cluster share this directory
(or a copy of it) so any node verifies any node's tokens.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

ALGORITHM = "ES256"
_KEYSET = "keyset.json"


@dataclass(frozen=True)
class PublishedKey:
    kid: str
    jwk: dict[str, Any]
    created_at: float
    retired_at: float | None
    verifier: Any


def _public_jwk(private_key: ec.EllipticCurvePrivateKey, kid: str) -> dict[str, Any]:
    jwk = ECAlgorithm.to_jwk(private_key.public_key(), as_dict=True)
    jwk.update({"kid": kid, "alg": ALGORITHM, "use": "sig"})
    return jwk


def _write_private(path: Path, private_key: ec.EllipticCurvePrivateKey) -> None:
    pem = private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    os.chmod(path, 0o600)


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh, indent=2)
    os.replace(tmp, path)


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    with open(directory / ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _new_key(directory: Path, data: dict[str, Any]) -> str:
    kid = time.strftime("%Y%m%d") + "-" + secrets.token_hex(4)
    private_key = ec.generate_private_key(ec.SECP256R1())
    _write_private(directory / f"{kid}.pem", private_key)
    data["keys"].append(
        {"kid": kid, "jwk": _public_jwk(private_key, kid), "created_at": time.time(),
         "retired_at": None}
    )
    data["current"] = kid
    return kid


def ensure(directory: Path) -> None:
    """Create the first key if there is none (safe against concurrent starts)."""
    with _locked(directory):
        if not (directory / _KEYSET).exists():
            data: dict[str, Any] = {"current": None, "keys": []}
            _new_key(directory, data)
            _write_json(directory / _KEYSET, data)


def rotate(directory: Path, token_ttl: float) -> tuple[str, str | None]:
    """Make a new current key; return (new kid, retired kid). Old private keys are deleted."""
    ensure(directory)
    with _locked(directory):
        data = json.loads((directory / _KEYSET).read_text())
        old = data.get("current")
        now = time.time()
        for key in data["keys"]:
            if key["kid"] == old:
                key["retired_at"] = now
        # Drop public keys whose tokens can no longer be valid.
        data["keys"] = [
            k for k in data["keys"]
            if k["retired_at"] is None or k["retired_at"] + token_ttl > now
        ]
        new = _new_key(directory, data)
        _write_json(directory / _KEYSET, data)
        if old:
            with contextlib.suppress(FileNotFoundError):
                (directory / f"{old}.pem").unlink()
        return new, old


class KeySet:
    """In-memory view of the key directory, reloaded when the file changes."""

    def __init__(self, directory: Path, token_ttl: float) -> None:
        self.directory = directory
        self.token_ttl = token_ttl
        self._mtime = -1.0
        self._checked = 0.0
        self.current_kid = ""
        self._signing_key: Any = None
        self._keys: dict[str, PublishedKey] = {}
        ensure(directory)
        self.reload()

    def reload(self) -> None:
        path = self.directory / _KEYSET
        mtime = path.stat().st_mtime
        if mtime == self._mtime:
            return
        data = json.loads(path.read_text())
        keys = {}
        for k in data["keys"]:
            verifier = ECAlgorithm(ECAlgorithm.SHA256).from_jwk(k["jwk"])
            keys[k["kid"]] = PublishedKey(k["kid"], k["jwk"], k["created_at"], k["retired_at"],
                                          verifier)
        pem = (self.directory / f"{data['current']}.pem").read_bytes()
        self._signing_key = serialization.load_pem_private_key(pem, password=None)
        self.current_kid = data["current"]
        self._keys = keys
        self._mtime = mtime

    def refresh_if_stale(self, every: float = 5.0) -> None:
        now = time.monotonic()
        if now - self._checked >= every:
            self._checked = now
            self.reload()

    @property
    def signing_key(self) -> Any:
        return self._signing_key

    def verifier(self, kid: str) -> Any | None:
        key = self._keys.get(kid)
        if key is None:
            self.refresh_if_stale(every=1.0)
            key = self._keys.get(kid)
        if key is None:
            return None
        if key.retired_at is not None and key.retired_at + self.token_ttl < time.time():
            return None
        return key.verifier

    def jwks(self) -> dict[str, Any]:
        self.refresh_if_stale()
        now = time.time()
        return {
            "keys": [
                k.jwk for k in self._keys.values()
                if k.retired_at is None or k.retired_at + self.token_ttl > now
            ]
        }
