"""One producer, any number of bounded receiving channels."""

from typing import Generic, TypeVar

import trio

from skulk.faults import count

T = TypeVar("T")
# Items a receiver may fall behind by before new ones are dropped (the network never waits).
DEFAULT_CAPACITY = 1024


class Fanout(Generic[T]):
    """Copies each item to every open receiver; a closed receiver is forgotten.

    A receiver that is full misses the item (counted as "net.receiver_full"): whatever feeds a
    fanout comes from the network, so memory must not grow with a slow consumer.
    """

    def __init__(self, name: str, capacity: int = DEFAULT_CAPACITY) -> None:
        self.name = name
        self.capacity = capacity
        self.dropped = 0
        self._senders: list[trio.MemorySendChannel[T]] = []

    def open(self) -> trio.MemoryReceiveChannel[T]:
        send, receive = trio.open_memory_channel[T](self.capacity)
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
                self.dropped += 1
                count("net.receiver_full", f"a receiver of {self.name} is full")
        return delivered

    def close(self) -> None:
        """Receivers see end-of-channel once they drain what is queued."""
        for sender in self._senders:
            sender.close()
        self._senders.clear()
