"""msgpack <-> pydantic models, behind a one-byte format version.

A frame is `FORMAT_VERSION` followed by msgpack of `model_dump(mode="json", by_alias=True)`.
Decoding validates with pydantic; every failure surfaces as `CodecError`, nothing else.
"""

from typing import Any

import msgpack
import pydantic_core
from pydantic import BaseModel, TypeAdapter

from skulk.errors import CodecError

FORMAT_VERSION = 0x01
_VERSION_BYTE = bytes([FORMAT_VERSION])

# Keyed by the target type; unions such as Event are Annotated objects, hashable but not classes.
_ADAPTERS: dict[Any, TypeAdapter[Any]] = {}


def adapter_for(type_or_adapter: Any) -> TypeAdapter[Any]:
    """A cached TypeAdapter for a model class or union (passes a TypeAdapter through)."""
    if isinstance(type_or_adapter, TypeAdapter):
        return type_or_adapter
    try:
        return _ADAPTERS[type_or_adapter]
    except KeyError:
        pass
    except TypeError as exc:  # unhashable: not a type we can build an adapter for
        raise CodecError(f"cannot build a codec for {type_or_adapter!r}") from exc
    try:
        adapter: TypeAdapter[Any] = TypeAdapter(type_or_adapter)
    except Exception as exc:
        raise CodecError(f"cannot build a codec for {type_or_adapter!r}") from exc
    _ADAPTERS[type_or_adapter] = adapter
    return adapter


def _to_jsonable(value: Any, adapter: Any) -> Any:
    if adapter is not None:
        return adapter_for(adapter).dump_python(value, mode="json", by_alias=True)
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", by_alias=True)
    raise CodecError(f"cannot encode {type(value).__name__} without an adapter")


def encode(value: Any, adapter: Any = None) -> bytes:
    """Version byte + msgpack. `adapter` (a type or TypeAdapter) is needed for non-models."""
    try:
        return _VERSION_BYTE + msgpack.packb(_to_jsonable(value, adapter), use_bin_type=True)
    except CodecError:
        raise
    except Exception as exc:
        raise CodecError(f"cannot encode {type(value).__name__}: {exc}") from exc


def decode(data: bytes, type_or_adapter: Any) -> Any:
    """Parse a frame made by `encode` into `type_or_adapter`; raises only CodecError."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise CodecError(f"expected bytes, got {type(data).__name__}")
    view = memoryview(data)
    if len(view) == 0:
        raise CodecError("empty frame")
    if view[0] != FORMAT_VERSION:
        raise CodecError(f"unknown codec version {view[0]}")
    adapter = adapter_for(type_or_adapter)
    try:
        raw = msgpack.unpackb(view[1:], raw=False, strict_map_key=True)
    except Exception as exc:
        raise CodecError(f"malformed msgpack: {exc}") from exc
    try:
        # Through JSON so strict models still get JSON's coercions (ISO datetimes, enum values).
        return adapter.validate_json(pydantic_core.to_json(raw))
    except Exception as exc:  # ValidationError, plus anything a validator might throw
        raise CodecError(f"invalid payload: {exc}") from exc


def encode_json(value: Any, adapter: Any = None) -> bytes:
    """JSON bytes (camelCase, tagged), the gossip encoding."""
    try:
        if adapter is not None:
            return adapter_for(adapter).dump_json(value, by_alias=True)
        if isinstance(value, BaseModel):
            return value.model_dump_json(by_alias=True).encode()
    except CodecError:
        raise
    except Exception as exc:
        raise CodecError(f"cannot encode {type(value).__name__}: {exc}") from exc
    raise CodecError(f"cannot encode {type(value).__name__} without an adapter")


def decode_json(data: bytes | str, type_or_adapter: Any) -> Any:
    """Parse JSON made by `encode_json`; raises only CodecError."""
    if not isinstance(data, (bytes, bytearray, str)):
        raise CodecError(f"expected bytes or str, got {type(data).__name__}")
    adapter = adapter_for(type_or_adapter)
    try:
        return adapter.validate_json(data)
    except Exception as exc:
        raise CodecError(f"invalid JSON payload: {exc}") from exc
