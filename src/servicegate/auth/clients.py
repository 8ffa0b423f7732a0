"""Clients and their API keys: the repository the CLI, the admin API and auth share."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from servicegate.auth import credentials
from servicegate.auth.scopes import validate_scopes
from servicegate.clock import as_utc, isoformat, utcnow
from servicegate.storage.schema import api_keys, clients, jobs, webhooks


class ClientExists(Exception):
    pass


class NotFound(Exception):
    pass


@dataclass(frozen=True, slots=True)
class ClientRecord:
    id: str
    name: str
    scopes: tuple[str, ...]
    enabled: bool
    created_at: datetime
    updated_at: datetime

    def to_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "name": self.name,
            "scopes": list(self.scopes),
            "enabled": self.enabled,
            "createdAt": isoformat(self.created_at),
            "updatedAt": isoformat(self.updated_at),
        }


@dataclass(frozen=True, slots=True)
class KeyRecord:
    id: str
    client_id: str
    hint: str
    created_at: datetime
    revoked_at: datetime | None

    def to_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "hint": self.hint,
            "createdAt": isoformat(self.created_at),
            "revokedAt": isoformat(self.revoked_at),
            "active": self.revoked_at is None,
        }


@dataclass(frozen=True, slots=True)
class NewClient:
    client: ClientRecord
    client_secret: str
    api_key: str
    key_id: str


def _client(row: object) -> ClientRecord:
    m = row._mapping  # type: ignore[attr-defined]
    return ClientRecord(
        id=m["id"],
        name=m["name"],
        scopes=tuple(m["scopes"]),
        enabled=bool(m["enabled"]),
        created_at=as_utc(m["created_at"]),  # type: ignore[arg-type]
        updated_at=as_utc(m["updated_at"]),  # type: ignore[arg-type]
    )


def _key(row: object) -> KeyRecord:
    m = row._mapping  # type: ignore[attr-defined]
    return KeyRecord(
        id=m["id"],
        client_id=m["client_id"],
        hint=m["hint"],
        created_at=as_utc(m["created_at"]),  # type: ignore[arg-type]
        revoked_at=as_utc(m["revoked_at"]),
    )


_CLIENT_COLS = (
    clients.c.id,
    clients.c.name,
    clients.c.scopes,
    clients.c.enabled,
    clients.c.created_at,
    clients.c.updated_at,
)


class ClientStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def create(self, name: str, scopes: list[str]) -> NewClient:
        scopes = validate_scopes(scopes)
        now = utcnow()
        client_id = credentials.new_id("cl")
        secret = credentials.new_client_secret()
        api_key = credentials.new_api_key()
        key_id = credentials.new_id("key")
        secret_hash = credentials.hash_secret(secret)
        try:
            async with self.engine.begin() as conn:
                await conn.execute(
                    insert(clients).values(
                        id=client_id,
                        name=name,
                        scopes=scopes,
                        secret_hash=secret_hash,
                        enabled=True,
                        created_at=now,
                        updated_at=now,
                    )
                )
                await conn.execute(
                    insert(api_keys).values(
                        id=key_id,
                        client_id=client_id,
                        digest=credentials.key_digest(api_key),
                        hint=credentials.key_hint(api_key),
                        created_at=now,
                    )
                )
        except IntegrityError:
            raise ClientExists(name) from None
        record = ClientRecord(client_id, name, tuple(scopes), True, now, now)
        return NewClient(record, secret, api_key, key_id)

    async def list(self) -> list[ClientRecord]:
        async with self.engine.connect() as conn:
            rows = await conn.execute(select(*_CLIENT_COLS).order_by(clients.c.created_at))
            return [_client(r) for r in rows]

    async def get(self, id_or_name: str) -> ClientRecord:
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(
                    select(*_CLIENT_COLS).where(
                        (clients.c.id == id_or_name) | (clients.c.name == id_or_name)
                    )
                )
            ).first()
        if row is None:
            raise NotFound(id_or_name)
        return _client(row)

    async def secret_hash(self, client_id: str) -> tuple[ClientRecord, str] | None:
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(
                    select(*_CLIENT_COLS, clients.c.secret_hash).where(clients.c.id == client_id)
                )
            ).first()
        return None if row is None else (_client(row), row.secret_hash)

    async def by_key_digest(self, digest: str) -> ClientRecord | None:
        """The client owning an active key with this digest (the digest is re-checked)."""
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(
                    select(*_CLIENT_COLS, api_keys.c.digest)
                    .join(api_keys, api_keys.c.client_id == clients.c.id)
                    .where(api_keys.c.digest == digest, api_keys.c.revoked_at.is_(None))
                )
            ).first()
        if row is None or not credentials.digests_match(row.digest, digest):
            return None
        return _client(row)

    async def update(
        self,
        client_id: str,
        *,
        enabled: bool | None = None,
        scopes: list[str] | None = None,
        name: str | None = None,
    ) -> ClientRecord:
        values: dict[str, object] = {"updated_at": utcnow()}
        if enabled is not None:
            values["enabled"] = enabled
        if scopes is not None:
            values["scopes"] = validate_scopes(scopes)
        if name is not None:
            values["name"] = name
        record = await self.get(client_id)
        try:
            async with self.engine.begin() as conn:
                await conn.execute(update(clients).where(clients.c.id == record.id).values(values))
        except IntegrityError:
            raise ClientExists(name or "") from None
        return await self.get(record.id)

    async def delete(self, client_id: str) -> ClientRecord:
        record = await self.get(client_id)
        async with self.engine.begin() as conn:
            await conn.execute(delete(api_keys).where(api_keys.c.client_id == record.id))
            await conn.execute(delete(webhooks).where(webhooks.c.client_id == record.id))
            await conn.execute(delete(jobs).where(jobs.c.client_id == record.id))
            await conn.execute(delete(clients).where(clients.c.id == record.id))
        return record

    async def add_key(self, client_id: str) -> tuple[KeyRecord, str]:
        record = await self.get(client_id)
        api_key = credentials.new_api_key()
        key = KeyRecord(credentials.new_id("key"), record.id, credentials.key_hint(api_key),
                        utcnow(), None)
        async with self.engine.begin() as conn:
            await conn.execute(
                insert(api_keys).values(
                    id=key.id,
                    client_id=key.client_id,
                    digest=credentials.key_digest(api_key),
                    hint=key.hint,
                    created_at=key.created_at,
                )
            )
        return key, api_key

    async def keys(self, client_id: str) -> list[KeyRecord]:
        record = await self.get(client_id)
        async with self.engine.connect() as conn:
            rows = await conn.execute(
                select(api_keys).where(api_keys.c.client_id == record.id)
                .order_by(api_keys.c.created_at)
            )
            return [_key(r) for r in rows]

    async def revoke_key(self, client_id: str, key_id: str) -> KeyRecord:
        record = await self.get(client_id)
        async with self.engine.begin() as conn:
            result = await conn.execute(
                update(api_keys)
                .where(api_keys.c.id == key_id, api_keys.c.client_id == record.id,
                       api_keys.c.revoked_at.is_(None))
                .values(revoked_at=utcnow())
            )
            if result.rowcount == 0:
                raise NotFound(key_id)
        return next(k for k in await self.keys(record.id) if k.id == key_id)
