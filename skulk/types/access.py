"""API keys and the caller identity they grant. Records hold a salted scrypt hash, never the key."""

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from pydantic import Field

from skulk.types.base import WireModel

Role = Literal["admin", "user"]
KEY_PREFIX = "sk-skulk-"
MAX_KEYS = 10_000  # every node holds every record; a cluster has tens, not millions
MAX_NAME_LEN = 120
MAX_MODELS = 256
MAX_KEY_LEN = 512  # a presented key longer than this is refused before any hashing
# scrypt cost: ~10 ms per key per node, once (the verified key is cached afterwards)
_SCRYPT = {"n": 2**14, "r": 8, "p": 1, "dklen": 32}


class ApiKeyRecord(WireModel):
    id: str = Field(min_length=1, max_length=64)
    name: str = Field(max_length=MAX_NAME_LEN)
    role: Role
    models: list[str] | None = Field(default=None, max_length=MAX_MODELS)
    project: str | None = Field(default=None, max_length=MAX_NAME_LEN)
    created_at: datetime
    expires_at: datetime | None = None
    salt: str = Field(min_length=16, max_length=128)  # hex
    key_hash: str = Field(min_length=32, max_length=256)  # hex scrypt(key, salt)
    last_used_at: datetime | None = None

    def expired(self, now: datetime) -> bool:
        return self.expires_at is not None and now >= self.expires_at

    def public(self) -> dict:
        """What GET /v1/keys shows: everything but salt and hash."""
        return {"id": self.id, "name": self.name, "role": self.role, "models": self.models,
                "project": self.project, "created_at": self.created_at.isoformat(),
                "expires_at": self.expires_at.isoformat() if self.expires_at else None,
                "last_used_at": self.last_used_at.isoformat() if self.last_used_at else None}


@dataclass(frozen=True)
class Principal:
    """Who is calling: the key's id and its scope. Routes read it via skulk.api.auth.principal_of."""

    key_id: str
    name: str
    role: Role
    models: tuple[str, ...] | None = None
    project: str | None = None

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    def may_use(self, model_id: str) -> bool:
        return self.models is None or model_id in self.models

    @classmethod
    def of(cls, record: ApiKeyRecord) -> "Principal":
        models = tuple(record.models) if record.models is not None else None
        return cls(key_id=record.id, name=record.name, role=record.role, models=models,
                   project=record.project)


def new_key_id() -> str:
    return secrets.token_hex(8)


def new_key(key_id: str) -> str:
    """The key carries its id, so a node verifies it with one hash, not one per record."""
    return f"{KEY_PREFIX}{key_id}.{secrets.token_urlsafe(32)}"


def key_id_hint(key: str) -> str | None:
    """The id a generated key names; None for a configured key of free form."""
    if not key.startswith(KEY_PREFIX):
        return None
    head, dot, _ = key[len(KEY_PREFIX):].partition(".")
    return head if dot and 0 < len(head) <= 64 else None


def new_salt() -> str:
    return secrets.token_hex(16)


def hash_key(key: str, salt: str) -> str:
    return hashlib.scrypt(key.encode(), salt=bytes.fromhex(salt), **_SCRYPT).hex()


def key_matches(key: str, record: ApiKeyRecord) -> bool:
    return hmac.compare_digest(hash_key(key, record.salt), record.key_hash)
