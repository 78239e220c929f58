"""Per-node verification of presented API keys against the replicated key records.

scrypt runs once per key per node: a verified key's digest maps to its id afterwards, and that
entry is re-checked against the live record (revoked, replaced or expired) on every request.
"""

import hashlib
from collections import OrderedDict
from collections.abc import Mapping
from datetime import datetime

from skulk.types.access import MAX_KEY_LEN, ApiKeyRecord, key_id_hint, key_matches

CACHE_SIZE = 4096
MAX_TOUCHED = 1024  # ids one TouchApiKeys carries
MAX_TRIES = 8  # free-form (configured) keys tried per unknown key; generated keys name their id


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()  # a cache key only; never stored or sent


class KeyVerifier:
    def __init__(self) -> None:
        self._good: OrderedDict[bytes, str] = OrderedDict()  # digest -> key id
        self._bad: OrderedDict[bytes, None] = OrderedDict()
        self._bad_for: object = None  # the records mapping the misses were judged against
        self._hashes: dict[str, str] = {}  # key id -> the hash it was verified against

    def verify(self, key: str, records: Mapping[str, ApiKeyRecord], now: datetime) -> ApiKeyRecord | None:
        """The live, unexpired record `key` belongs to, or None."""
        if not key or len(key) > MAX_KEY_LEN:
            return None
        digest = _digest(key)
        key_id = self._good.get(digest)
        if key_id is not None:
            record = records.get(key_id)
            if record is not None and not record.expired(now) and self._still(digest, record):
                return record
            self._good.pop(digest, None)
        if self._bad_for is not records:
            self._bad.clear()  # a new key may have arrived since these missed
            self._bad_for = records
        if digest in self._bad:
            return None
        record = self._match(key, records)
        if record is None:
            _remember(self._bad, digest, None)
            return None
        _remember(self._good, digest, record.id)
        self._hashes[record.id] = record.key_hash
        return record if not record.expired(now) else None

    def _still(self, digest: bytes, record: ApiKeyRecord) -> bool:
        return self._hashes.get(record.id) == record.key_hash  # an id re-used by another key

    def _match(self, key: str, records: Mapping[str, ApiKeyRecord]) -> ApiKeyRecord | None:
        hint = key_id_hint(key)
        if hint is not None:
            record = records.get(hint)
            return record if record is not None and key_matches(key, record) else None
        tried = 0
        for record in records.values():
            if record.id.startswith("cfg-") and tried < MAX_TRIES:
                tried += 1
                if key_matches(key, record):
                    return record
        return None


def _remember(cache: OrderedDict, digest: bytes, value) -> None:
    cache[digest] = value
    cache.move_to_end(digest)
    while len(cache) > CACHE_SIZE:
        cache.popitem(last=False)


class KeyUsage:
    """Last-used times of keys on this node, taken in batches (one TouchApiKeys a while)."""

    def __init__(self) -> None:
        self._last: dict[str, datetime] = {}

    def note(self, key_id: str, when: datetime) -> None:
        if len(self._last) < MAX_TOUCHED or key_id in self._last:
            self._last[key_id] = when

    def take(self) -> dict[str, datetime]:
        taken, self._last = self._last, {}
        return taken
