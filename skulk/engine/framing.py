"""Length-prefixed msgpack frames over a byte stream: 4-byte big-endian length, then the body.

The body is the map of one frame model of skulk.types.runner_frames."""

import struct
from typing import Any, BinaryIO

import msgpack

_LEN = struct.Struct("!I")
MAX_FRAME = 64 * 1024 * 1024


def write_frame(stream: BinaryIO, message: Any) -> None:
    """Write one frame: a frame model (skulk.types.runner_frames) or its map."""
    if hasattr(message, "wire"):
        message = message.wire()
    body = msgpack.packb(message, use_bin_type=True)
    stream.write(_LEN.pack(len(body)) + body)
    stream.flush()


def _read_exact(stream: BinaryIO, n: int) -> bytes | None:
    chunks = []
    while n:
        chunk = stream.read(n)
        if not chunk:
            return None
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def read_frame(stream: BinaryIO) -> dict[str, Any] | None:
    """The next message, or None at end of stream."""
    header = _read_exact(stream, _LEN.size)
    if header is None:
        return None
    (size,) = _LEN.unpack(header)
    if size > MAX_FRAME:
        raise ValueError(f"frame of {size} bytes exceeds {MAX_FRAME}")
    body = _read_exact(stream, size)
    if body is None:
        return None
    return msgpack.unpackb(body, raw=False)
