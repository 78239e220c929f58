"""A runner's stderr, seen from the node: kept flowing, its tail remembered, copied to a file."""

import logging
from collections import deque

import trio

from skulk.faults import isolate
from skulk.runner.runner_log import RunnerLogFile

log = logging.getLogger(__name__)

TAIL_LINES = 20  # enough for a failure message to name what went wrong
MAX_LINE_BYTES = 64 * 1024


class StderrDrain:
    def __init__(self, runner_id: str, log_file: RunnerLogFile):
        self.runner_id = runner_id
        self.log_file = log_file
        self.tail: deque[str] = deque(maxlen=TAIL_LINES)
        self.closed = trio.Event()

    @property
    def last_line(self) -> str | None:
        return self.tail[-1] if self.tail else None

    async def run(self, proc: trio.Process) -> None:
        """Read until the pipe closes (a full pipe would block the child), then set `closed`."""
        pending = b""
        self.log_file.start(proc.pid)
        try:
            assert proc.stderr is not None
            async for data in proc.stderr:
                *lines, pending = (pending + data).split(b"\n")
                pending = pending[-MAX_LINE_BYTES:]  # a runner that never ends a line cannot grow us
                with isolate("runner.stderr"):  # a log file that cannot be written loses lines, not the runner
                    for line in lines:
                        self._take(line)
                    self.log_file.flush()
            if pending:
                self._take(pending)
        finally:
            self.log_file.close()
            self.closed.set()

    def _take(self, raw: bytes) -> None:
        line = raw.decode(errors="replace").rstrip()
        if line:
            self.tail.append(line)
            self.log_file.write(line)
            log.debug("runner %s: %s", self.runner_id, line)
