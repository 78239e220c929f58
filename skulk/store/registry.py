"""The store's registry.json: the models the store holds, file by file with size and sha256.

Workers stage from these entries and verify every byte against them, so an entry is only
written after its directory is complete.
"""

import hashlib
import json
import logging
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict

from skulk.models.atomic import write_file_atomically
from skulk.faults import count
from skulk.types.ids import model_dir_name, validate_model_id

log = logging.getLogger(__name__)

REGISTRY_FILE = "registry.json"
_HASH_CHUNK = 4 * 1024 * 1024


class StoredFile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    path: str  # relative, '/'-separated
    size: int
    sha256: str


class RegistryEntry(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    model_id: Annotated[str, AfterValidator(validate_model_id)]  # it names a directory
    store_path: str
    files: list[StoredFile]
    downloaded_at: str
    total_bytes: int

    @property
    def dir_name(self) -> str:
        return model_dir_name(self.model_id)


def safe_relative(path: str) -> PurePosixPath | None:
    """`path` as a relative path inside a model directory, or None if it could escape it."""
    rel = PurePosixPath(path)
    if not path or rel.is_absolute() or any(part in ("..", "") for part in rel.parts) or "\\" in path:
        return None
    return rel


def hash_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def model_files(directory: Path) -> list[Path]:
    """Every regular file of a model directory, skipping hidden ones (caches, markers)."""
    return sorted(
        p for p in directory.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(directory).parts)
    )


def describe_model_dir(directory: Path, model_id: str, now: datetime | None = None) -> RegistryEntry:
    """A registry entry for a finished model directory (hashes every file: blocking)."""
    files = [StoredFile(path=p.relative_to(directory).as_posix(), size=p.stat().st_size, sha256=hash_file(p))
             for p in model_files(directory)]
    when = (now or datetime.now(timezone.utc)).isoformat()
    return RegistryEntry(model_id=model_id, store_path=str(directory), files=files, downloaded_at=when,
                         total_bytes=sum(f.size for f in files))


class Registry:
    """registry.json under the store root; every change is written atomically."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.path = self.root / REGISTRY_FILE
        self._entries = self._load()

    def _load(self) -> dict[str, RegistryEntry]:
        if not self.path.is_file():
            return {}
        try:
            raw = json.loads(self.path.read_text())
            listed = raw.get("entries", []) if isinstance(raw, dict) else None
            if not isinstance(listed, list):
                raise ValueError("no list of entries")
        except (OSError, ValueError) as exc:
            log.error("store registry %s is unreadable (%s); starting from an empty registry", self.path, exc)
            return {}
        entries = {}
        for raw_entry in listed:
            try:
                entry = RegistryEntry.model_validate(raw_entry)
            except ValueError as exc:  # one bad entry (e.g. an unsafe model id) hides no other
                count("store.registry_entry", str(exc).splitlines()[0])
                continue
            entries[entry.model_id] = entry
        return entries

    def entries(self) -> list[RegistryEntry]:
        return sorted(self._entries.values(), key=lambda e: e.model_id)

    def get(self, model_id: str) -> RegistryEntry | None:
        return self._entries.get(model_id)

    def put(self, entry: RegistryEntry) -> None:
        self._entries[entry.model_id] = entry
        self._save()

    def remove(self, model_id: str) -> bool:
        if self._entries.pop(model_id, None) is None:
            return False
        self._save()
        return True

    def _save(self) -> None:
        doc = {"entries": [e.model_dump() for e in self.entries()]}
        write_file_atomically(self.path, json.dumps(doc, indent=1).encode())


def register_model(store_root: Path, model_id: str) -> RegistryEntry:
    """Register the finished directory `<store_root>/<org>--<name>` (operators and tests)."""
    entry = describe_model_dir(Path(store_root) / model_dir_name(model_id), model_id)
    Registry(store_root).put(entry)
    return entry
