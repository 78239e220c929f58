"""The runner protocol's frames on trio streams: 4-byte big-endian length, then msgpack.

Same wire format as skulk.engine.framing (which works on blocking file objects in the child).
"""

import struct
from typing import Any

import msgpack
import trio
from pydantic import ValidationError

from skulk.engine.framing import MAX_FRAME
from skulk.types.runner_frames import from_runner

_LEN = struct.Struct("!I")
_CHUNK = 64 * 1024


class FrameError(ValueError):
    """The runner wrote bytes that are not a frame."""


class UndecodableFrame(FrameError):
    """A whole frame whose body is not a msgpack map: the stream is still in step after it."""


class UnsendableFrame(ValueError):
    """A message the runner could not read: over MAX_FRAME (the child would exit on it) or not
    encodable (e.g. an integer beyond 64 bits). Nothing is written."""


def encode_frame(message: Any) -> bytes:
    """One frame for the runner: a ToRunner model (skulk.types.runner_frames) or its map."""
    try:
        body = msgpack.packb(message.wire() if hasattr(message, "wire") else message, use_bin_type=True)
    except (ValueError, TypeError, OverflowError) as exc:
        raise UnsendableFrame(f"cannot encode the message: {exc}") from None
    if len(body) > MAX_FRAME:
        raise UnsendableFrame(f"the message is {len(body)} bytes, over the runner's {MAX_FRAME}-byte frame limit")
    return _LEN.pack(len(body)) + body


def parse_frame(message: dict[str, Any]) -> Any:
    """A runner's map as its FromRunner model; a malformed one raises MalformedFrame."""
    try:
        return from_runner(message)
    except ValidationError as exc:
        raise MalformedFrame(str(exc).splitlines()[0] if str(exc) else "malformed frame") from None


class MalformedFrame(ValueError):
    """A whole frame whose fields do not make one of the runner's frames."""


class FrameReader:
    """Reads whole frames from a trio ReceiveStream; one task at a time."""

    def __init__(self, stream: trio.abc.ReceiveStream):
        self._stream = stream
        self._buf = bytearray()

    async def receive(self) -> dict[str, Any] | None:
        """The next message, or None at end of stream (a cut-off last frame counts as the end)."""
        while True:
            message = self._take()
            if message is not None:
                return message
            data = await self._stream.receive_some(_CHUNK)
            if not data:
                return None
            self._buf += data

    def _take(self) -> dict[str, Any] | None:
        if len(self._buf) < _LEN.size:
            return None
        (size,) = _LEN.unpack_from(self._buf)
        if size > MAX_FRAME:
            raise FrameError(f"frame of {size} bytes exceeds {MAX_FRAME}")
        end = _LEN.size + size
        if len(self._buf) < end:
            return None
        body = bytes(self._buf[_LEN.size : end])
        del self._buf[:end]
        try:
            message = msgpack.unpackb(body, raw=False)
        except (ValueError, msgpack.UnpackException) as exc:
            raise UndecodableFrame(f"undecodable frame: {exc}") from exc
        if not isinstance(message, dict):
            raise UndecodableFrame(f"frame is a {type(message).__name__}, not a map")
        return message
