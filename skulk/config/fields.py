"""Walks the Settings model so env names, the example file and the docs all come from it."""

import types
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from skulk.config.model import Settings

ENV_PREFIX = "SKULK_"

# Names the previous Skulk read, kept so existing deployments keep working.
LEGACY_ENV_NAMES: dict[str, tuple[str, ...]] = {
    "SKULK_LIBP2P_NAMESPACE": ("cluster", "namespace"),
    "SKULK_MAX_CONCURRENT_REQUESTS": ("inference", "max_concurrent_requests"),
    "SKULK_KV_CACHE_BACKEND": ("inference", "kv_cache_backend"),
}


@dataclass(frozen=True)
class FieldEntry:
    """One key of the configuration: a section (model-typed) or a leaf value."""

    path: tuple[str, ...]
    info: FieldInfo
    section: type[BaseModel] | None  # the model class when this key is a section
    optional_section: bool  # a section that is null unless configured (model_store)

    @property
    def dotted(self) -> str:
        return ".".join(self.path)

    @property
    def env_name(self) -> str | None:
        """SKULK_<KEY> at top level, SKULK_<SECTION>__<KEY> below; None for sections and maps."""
        if self.section is not None or _is_mapping(self.info.annotation):
            return None
        return ENV_PREFIX + "__".join(part.upper() for part in self.path)

    @property
    def legacy_env_names(self) -> tuple[str, ...]:
        return tuple(name for name, path in LEGACY_ENV_NAMES.items() if path == self.path)


def child_fields(
    model: type[BaseModel] = Settings, prefix: tuple[str, ...] = ()
) -> Iterator[FieldEntry]:
    """The keys directly inside one section, in declaration order."""
    for name, info in model.model_fields.items():
        section, optional = _section_of(info.annotation)
        yield FieldEntry(prefix + (name,), info, section, optional)


def iter_fields(
    model: type[BaseModel] = Settings, prefix: tuple[str, ...] = ()
) -> Iterator[FieldEntry]:
    """Every key in declaration order, each section followed by its own keys."""
    for entry in child_fields(model, prefix):
        yield entry
        if entry.section is not None:
            yield from iter_fields(entry.section, entry.path)


def env_names() -> dict[str, tuple[str, ...]]:
    """Every env variable that sets a key, mapped to that key's path."""
    names = {entry.env_name: entry.path for entry in iter_fields() if entry.env_name}
    return names | LEGACY_ENV_NAMES


def _section_of(annotation: Any) -> tuple[type[BaseModel] | None, bool]:
    if _is_model(annotation):
        return annotation, False
    if get_origin(annotation) in (Union, types.UnionType):
        members = [arg for arg in get_args(annotation) if arg is not type(None)]
        if len(members) == 1 and _is_model(members[0]):
            return members[0], True
    return None, False


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _is_mapping(annotation: Any) -> bool:
    return get_origin(annotation) is dict
