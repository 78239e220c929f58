"""Direct, ordered messages to one peer over long-lived libp2p streams."""

import logging
from collections import Counter, defaultdict

import trio
from libp2p.abc import IHost, INetStream
from libp2p.custom_types import TProtocol
from libp2p.peer.id import ID

from skulk.faults import count
from skulk.net.errors import NetError
from skulk.net.fanout import Fanout
from skulk.net.framing import encode_header, read_frame, write_frame
from skulk.net.messages import DirectMessage

log = logging.getLogger(__name__)
_RESET_GRACE = 1.0

_Key = tuple[str, str]  # (peer id, protocol)


class DirectStreams:
    """One reused outbound stream per (peer, protocol), writers serialized by a lock.

    Frames on one stream arrive in order; a stream that fails mid-frame is reset so
    the receiver discards the partial frame instead of misreading what follows.
    """

    def __init__(
        self, host: IHost, counters: Counter[str], fanouts: dict[str, Fanout[DirectMessage]]
    ) -> None:
        self._host = host
        self._counters = counters
        self._fanouts = fanouts
        self._streams: dict[_Key, INetStream] = {}
        self._locks: defaultdict[_Key, trio.Lock] = defaultdict(trio.Lock)

    async def send(self, peer_id: str, protocol: str, data: bytes, timeout: float) -> None:
        encode_header(len(data))  # refuse oversized messages before touching the network
        key = (peer_id, protocol)
        try:
            with trio.fail_after(timeout):
                async with self._locks[key]:
                    await self._send_locked(key, data)
        except trio.TooSlowError:
            self._counters["direct_send_failed"] += 1
            raise NetError(
                f"sending to {peer_id} on {protocol} timed out after {timeout}s"
            ) from None
        except NetError:
            self._counters["direct_send_failed"] += 1
            raise
        self._counters["direct_sent"] += 1
        self._counters["direct_sent_bytes"] += len(data)

    async def _send_locked(self, key: _Key, data: bytes) -> None:
        stream = self._streams.get(key)
        if stream is not None:
            try:
                await self._write(key, stream, data)
                return
            except NetError:
                log.debug("cached stream to %s failed, reopening", key)
        stream = await self._open(key)
        await self._write(key, stream, data)

    async def _open(self, key: _Key) -> INetStream:
        peer_id, protocol = key
        try:
            stream = await self._host.new_stream(ID.from_base58(peer_id), [TProtocol(protocol)])
        except Exception as e:
            raise NetError(f"cannot open {protocol} stream to {peer_id}: {e}") from e
        self._streams[key] = stream
        return stream

    async def _write(self, key: _Key, stream: INetStream, data: bytes) -> None:
        try:
            await write_frame(stream, data)
        except BaseException as e:
            self._streams.pop(key, None)
            await _reset_quietly(stream)
            if isinstance(e, Exception):
                raise NetError(f"stream to {key[0]} on {key[1]} broke: {e}") from e
            raise

    async def handle_inbound(self, stream: INetStream) -> None:
        """Stream handler: deliver frames until the peer closes; drop a bad stream."""
        peer_id = str(stream.muxed_conn.peer_id)
        protocol = str(stream.get_protocol())
        fanout = self._fanouts.get(protocol)
        try:
            while (data := await read_frame(stream)) is not None:
                self._counters["direct_received"] += 1
                self._counters["direct_received_bytes"] += len(data)
                if fanout is None or not fanout.send(DirectMessage(peer_id, protocol, data)):
                    self._counters["direct_unclaimed"] += 1
        except Exception as e:  # FrameError, reset, broken connection: never fatal
            self._counters["direct_frames_dropped"] += 1
            count("net.direct_stream", f"dropping {protocol} stream from {peer_id}: {e}"[:300])
            await _reset_quietly(stream)
            return
        await _close_quietly(stream)

    def forget_peer(self, peer_id: str) -> None:
        """Drop cached streams to a peer whose last connection closed."""
        for key in [k for k in self._streams if k[0] == peer_id]:
            del self._streams[key]


async def _reset_quietly(stream: INetStream) -> None:
    # Runs on error paths, possibly while cancelled: shield it but bound it.
    with trio.CancelScope(shield=True), trio.move_on_after(_RESET_GRACE):
        try:
            await stream.reset()
        except Exception:
            log.debug("stream reset failed", exc_info=True)


async def _close_quietly(stream: INetStream) -> None:
    with trio.move_on_after(_RESET_GRACE):
        try:
            await stream.close()
        except Exception:
            log.debug("stream close failed", exc_info=True)
