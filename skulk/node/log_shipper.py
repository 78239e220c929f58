"""Ship the structured JSON log lines to `logging.ingest_url` with HTTP POST.

Best effort and bounded. A logging handler formats each record (as on stdout) into a bounded
queue; when the queue is full the oldest line goes and is counted. A trio task POSTs batches of
newline-delimited JSON (VictoriaLogs' /insert/jsonline reads them) once a batch is full or a
second has passed; a failed batch goes back to the queue and the next try waits, backing off up
to 30 s. Failures are logged at most once a minute, and records from this module and from httpx
are never shipped, so shipping cannot feed on its own logs.
"""

import logging
import threading
import time
from collections import deque
from collections.abc import Callable

import httpx
import trio

from skulk.faults import isolate
from skulk.node.logs import JsonLineFormatter

log = logging.getLogger(__name__)

CAPACITY = 10_000  # lines held while the target is slow or unreachable
BATCH_LINES = 500
FLUSH_INTERVAL_S = 1.0
POST_TIMEOUT_S = 5.0
BACKOFF_MAX_S = 30.0
ERROR_REPORT_INTERVAL_S = 60.0
FINAL_FLUSH_S = 2.0  # on shutdown, the last lines get this long
CONTENT_TYPE = "application/stream+json"
_NOT_SHIPPED = ("httpx", "httpcore", "hpack", __name__)


class LineQueue:
    """Bounded FIFO shared by the logging threads and the shipper; full means the oldest goes."""

    def __init__(self, capacity: int):
        self.capacity = capacity
        self.dropped = 0
        self._lines: deque[str] = deque()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._lines)

    def put(self, line: str) -> int:
        """Append; returns the length afterwards."""
        with self._lock:
            if len(self._lines) >= self.capacity:
                self._lines.popleft()
                self.dropped += 1
            self._lines.append(line)
            return len(self._lines)

    def take(self, limit: int) -> list[str]:
        with self._lock:
            return [self._lines.popleft() for _ in range(min(limit, len(self._lines)))]

    def give_back(self, lines: list[str]) -> None:
        """A batch that could not be sent goes back in front; what no longer fits is dropped."""
        with self._lock:
            room = max(0, self.capacity - len(self._lines))
            keep = lines[len(lines) - room:] if room < len(lines) else lines
            self.dropped += len(lines) - len(keep)
            self._lines.extendleft(reversed(keep))

    def clear(self) -> None:
        with self._lock:
            self._lines.clear()


def should_ship(logger_name: str) -> bool:
    """Records of the shipper and of the HTTP client it uses stay off the wire."""
    return not any(logger_name == name or logger_name.startswith(name + ".") for name in _NOT_SHIPPED)


def next_backoff(current: float) -> float:
    return min(BACKOFF_MAX_S, max(FLUSH_INTERVAL_S, current * 2))


class _ShipHandler(logging.Handler):
    def __init__(self, queue: LineQueue, formatter: JsonLineFormatter, on_full_batch: Callable[[], None]):
        super().__init__()
        self.setFormatter(formatter)
        self._queue, self._on_full_batch = queue, on_full_batch

    def emit(self, record: logging.LogRecord) -> None:
        if not should_ship(record.name):
            return
        try:
            if self._queue.put(self.format(record)) == BATCH_LINES:
                self._on_full_batch()
        except Exception:  # noqa: BLE001 - a log call must never fail because of shipping
            pass


class LogShipper:
    """POSTs log lines to the configured URL while `run()` runs; `configure()` switches it live."""

    def __init__(self, node_id: str | None, *, capacity: int = CAPACITY, clock: Callable[[], float] = time.monotonic):
        self.url = ""
        self.queue = LineQueue(capacity)
        self.shipped = 0
        self.errors = 0
        self._handler = _ShipHandler(self.queue, JsonLineFormatter(node_id), self._wake_soon)
        self._clock = clock
        self._closed = False  # run() has ended: no handler any more
        self._token: trio.lowlevel.TrioToken | None = None
        self._wake = trio.Event()
        self._retry_at = 0.0
        self._backoff = 0.0
        self._last_report = -ERROR_REPORT_INTERVAL_S

    def configure(self, enabled: bool, url: str, node_id: str | None = None) -> None:
        """Ship to `url` when enabled and set; anything else stops shipping and forgets queued lines."""
        target = url.strip() if enabled else ""
        if target != self.url:
            self._retry_at, self._backoff = 0.0, 0.0  # a new target is tried at once
        if not target:
            self.queue.clear()
        self.url = target
        if node_id is not None:
            assert isinstance(self._handler.formatter, JsonLineFormatter)
            self._handler.formatter.node_id = node_id
        self._sync_handler()
        self._wake_soon()

    @property
    def counters(self) -> dict[str, int]:
        return {"log_lines_shipped": self.shipped, "log_lines_dropped": self.queue.dropped,
                "log_ship_errors": self.errors}

    def _sync_handler(self) -> None:
        root = logging.getLogger()
        wanted = bool(self.url) and not self._closed  # before run() starts, lines wait in the queue
        if wanted and self._handler not in root.handlers:
            root.addHandler(self._handler)
        elif not wanted and self._handler in root.handlers:
            root.removeHandler(self._handler)

    def _wake_soon(self) -> None:
        # Called from any thread (a full batch) or from trio (configure); never blocks.
        token = self._token
        if token is not None:
            try:
                token.run_sync_soon(lambda: self._wake.set())
            except trio.RunFinishedError:
                pass

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        self._token = trio.lowlevel.current_trio_token()
        try:
            async with httpx.AsyncClient(timeout=POST_TIMEOUT_S, trust_env=False) as client:
                task_status.started()
                try:
                    await self._loop(client)
                finally:
                    self._closed = True
                    self._sync_handler()
                    with trio.CancelScope(shield=True) as final:
                        final.deadline = trio.current_time() + FINAL_FLUSH_S
                        await self._ship_queued(client)
        finally:
            self._closed, self._token = True, None
            self._sync_handler()

    async def _loop(self, client: httpx.AsyncClient) -> None:
        while True:
            with trio.move_on_after(FLUSH_INTERVAL_S):
                await self._wake.wait()
            self._wake = trio.Event()
            if self._clock() >= self._retry_at:
                with isolate("log_shipper.ship"):  # one failed pass drops its batch, not the node
                    await self._ship_queued(client)

    async def _ship_queued(self, client: httpx.AsyncClient) -> None:
        """POST everything queued, a batch at a time; stop at the first failure."""
        while self.url and len(self.queue):
            batch = self.queue.take(BATCH_LINES)
            if not await self._post(client, self.url, batch):
                self.queue.give_back(batch)
                break

    async def _post(self, client: httpx.AsyncClient, url: str, batch: list[str]) -> bool:
        body = ("\n".join(batch) + "\n").encode()
        try:
            response = await client.post(url, content=body, headers={"content-type": CONTENT_TYPE})
            response.raise_for_status()
        except (httpx.HTTPError, ValueError) as exc:  # ValueError: a malformed URL
            self._failed(url, exc)
            return False
        self.shipped += len(batch)
        self._retry_at, self._backoff = 0.0, 0.0
        return True

    def _failed(self, url: str, exc: Exception) -> None:
        self.errors += 1
        now = self._clock()
        self._backoff = next_backoff(self._backoff)
        self._retry_at = now + self._backoff
        if now - self._last_report >= ERROR_REPORT_INTERVAL_S:
            self._last_report = now
            log.warning("shipping logs to %s failed: %s: %s (%d lines queued, %d dropped so far)",
                        url, type(exc).__name__, exc, len(self.queue), self.queue.dropped)
