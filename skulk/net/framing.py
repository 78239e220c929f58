"""Length-prefixed frames on a libp2p stream: 4-byte big-endian length, then the bytes."""

from libp2p.abc import INetStream
from libp2p.network.stream.exceptions import StreamEOF

# The largest legitimate frames: a data-plane embedding chunk (a runner frame is at most 64 MiB)
# and a catch-up snapshot; push batches are ~4 MiB. Anything larger is refused before buffering.
MAX_FRAME = 64 * 1024 * 1024
CHUNK = 1024 * 1024  # bigger writes stall yamux flow control and cost memory copies
_HEADER = 4


class FrameError(Exception):
    """The peer sent something that is not a valid frame, or the stream broke mid-frame."""


def encode_header(length: int) -> bytes:
    if not 0 <= length <= MAX_FRAME:
        raise ValueError(f"frame of {length} bytes exceeds the {MAX_FRAME}-byte maximum")
    return length.to_bytes(_HEADER, "big")


async def write_frame(stream: INetStream, data: bytes) -> None:
    view = memoryview(data)
    # The header rides with the first chunk: one yamux frame for small messages.
    await stream.write(encode_header(len(data)) + bytes(view[:CHUNK]))
    for start in range(CHUNK, len(view), CHUNK):
        await stream.write(bytes(view[start : start + CHUNK]))


async def read_frame(stream: INetStream) -> bytes | None:
    """The next frame, or None when the peer closed the stream between frames."""
    header = await _read_exactly(stream, _HEADER, allow_clean_eof=True)
    if header is None:
        return None
    length = int.from_bytes(header, "big")
    if length > MAX_FRAME:
        raise FrameError(f"frame length {length} exceeds {MAX_FRAME}")
    body = await _read_exactly(stream, length, allow_clean_eof=False)
    assert body is not None
    return body


async def _read_exactly(stream: INetStream, n: int, *, allow_clean_eof: bool) -> bytes | None:
    buf = bytearray()
    while len(buf) < n:
        try:
            chunk = await stream.read(min(n - len(buf), CHUNK))
        except StreamEOF:
            chunk = b""
        if not chunk:
            if allow_clean_eof and not buf:
                return None
            raise FrameError(f"stream ended after {len(buf)} of {n} bytes")
        buf += chunk
    return bytes(buf)
