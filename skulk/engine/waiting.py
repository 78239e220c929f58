"""Requests waiting for a batch slot, shared by both engines: admitted highest priority first,
first come first served within one priority (a sequence number breaks ties). Stdlib only."""

import heapq
import itertools
from collections.abc import Iterable, Iterator
from typing import Generic, Protocol, TypeVar

from skulk.types.priority import rank


class _HasId(Protocol):
    id: str


R = TypeVar("R", bound=_HasId)


class WaitingQueue(Generic[R]):
    def __init__(self) -> None:
        self._heap: list[tuple[int, int, R]] = []
        self._seq = itertools.count()

    def push(self, request: R, priority: str | None = None) -> None:
        heapq.heappush(self._heap, (rank(priority), next(self._seq), request))

    def pop(self) -> R:
        """The next request to admit; IndexError when none waits."""
        return heapq.heappop(self._heap)[2]

    def remove(self, ids: Iterable[str]) -> list[R]:
        """Take out the requests with these ids (cancelled while waiting), in admission order."""
        ids = set(ids)
        gone = [entry for entry in self._heap if entry[2].id in ids]
        if gone:
            self._heap = [entry for entry in self._heap if entry[2].id not in ids]
            heapq.heapify(self._heap)
        return [entry[2] for entry in sorted(gone)]

    def __iter__(self) -> Iterator[R]:
        """Every waiting request, in admission order."""
        return iter([entry[2] for entry in sorted(self._heap)])

    def __len__(self) -> int:
        return len(self._heap)

    def __bool__(self) -> bool:
        return bool(self._heap)
