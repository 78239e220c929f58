"""One producer, any number of unbounded receiving channels."""

import logging
import math
from typing import Generic, TypeVar

import trio

T = TypeVar("T")
log = logging.getLogger(__name__)


class Fanout(Generic[T]):
    """Copies each item to every open receiver; a closed receiver is forgotten."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._senders: list[trio.MemorySendChannel[T]] = []

    def open(self) -> trio.MemoryReceiveChannel[T]:
        send, receive = trio.open_memory_channel[T](math.inf)
        self._senders.append(send)
        return receive

    def send(self, item: T) -> int:
        """Deliver without blocking; returns how many receivers got the item."""
        delivered = 0
        for sender in list(self._senders):
            try:
                sender.send_nowait(item)
                delivered += 1
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                self._senders.remove(sender)
            except trio.WouldBlock:
                log.warning("receiver of %s is full, dropping one item", self.name)
        return delivered

    def close(self) -> None:
        """Receivers see end-of-channel once they drain what is queued."""
        for sender in self._senders:
            sender.close()
        self._senders.clear()
