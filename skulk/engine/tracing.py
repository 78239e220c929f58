"""Per-task spans inside a runner, kept only for tasks submitted with tracing on.

A span is {"name", "cat", "ts", "dur", "attrs"} in wall-clock µs, the clock the API node's own
spans use, so one merged trace lines up across processes. Bounded per task: past `max_spans`
further spans fold into one per (category, name), whose duration is the sum, so totals stay
exact while the payload stays small.
"""

import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

MAX_SPANS = 1000
MAX_OPEN_TASKS = 256  # a session never finished (e.g. its task ended before a late submit) is dropped


def now_us() -> int:
    return int(time.time() * 1_000_000)


@dataclass
class _Session:
    begun_us: int
    spans: list[dict[str, Any]] = field(default_factory=list)
    folded: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)


class TaskTracer:
    def __init__(self, max_spans: int = MAX_SPANS, clock: Callable[[], int] = now_us):
        self._sessions: OrderedDict[str, _Session] = OrderedDict()
        self._max = max_spans
        self._clock = clock

    def begin(self, task_id: str) -> None:
        if task_id not in self._sessions:
            self._sessions[task_id] = _Session(self._clock())
        while len(self._sessions) > MAX_OPEN_TASKS:
            self._sessions.popitem(last=False)

    def __contains__(self, task_id: object) -> bool:
        return task_id in self._sessions

    @property
    def open_tasks(self) -> list[str]:
        return list(self._sessions)

    def traced(self, task_ids: Iterable[str]) -> list[str]:
        return [t for t in task_ids if t in self._sessions] if self._sessions else []

    def record(self, task_ids: Iterable[str], cat: str, name: str, start_us: int, end_us: int, **attrs: Any) -> None:
        for task_id in task_ids:
            session = self._sessions.get(task_id)
            if session is not None:
                self._add(session, {"name": name, "cat": cat, "ts": start_us, "dur": max(end_us - start_us, 0),
                                    "attrs": dict(attrs)})

    def _add(self, session: _Session, span: dict[str, Any]) -> None:
        if len(session.spans) < self._max:
            session.spans.append(span)
            return
        folded = session.folded.get((span["cat"], span["name"]))
        if folded is None:
            session.folded[(span["cat"], span["name"])] = {**span, "attrs": {"folded": 1}}
        else:
            folded["dur"] += span["dur"]
            folded["attrs"]["folded"] += 1

    @contextmanager
    def span(self, task_ids: Iterable[str], cat: str, name: str, **attrs: Any) -> Iterator[None]:
        """Time the block for those of `task_ids` that are traced (also when it raises)."""
        traced = self.traced(task_ids)
        if not traced:
            yield
            return
        start = self._clock()
        try:
            yield
        finally:
            self.record(traced, cat, name, start, self._clock(), **attrs)

    def since_begin(self, task_id: str, cat: str, name: str) -> None:
        session = self._sessions.get(task_id)
        if session is not None:
            self.record([task_id], cat, name, session.begun_us, self._clock())

    def marker(self, task_id: str, name: str, **attrs: Any) -> None:
        now = self._clock()
        self.record([task_id], "marker", name, now, now, **attrs)

    def finish(self, task_id: str) -> list[dict[str, Any]] | None:
        """The task's spans, ending its session; None if it was not traced here."""
        session = self._sessions.pop(task_id, None)
        return None if session is None else session.spans + list(session.folded.values())
