"""In-place restart: the node stops its services, then the process execs itself again.

exec keeps the PID (so systemd and test harnesses keep tracking it) and the identity key on
disk gives the new process the same node id. The HTTP reply goes out before the stop begins.
"""

import logging
import os
import sys
import threading
import time
from collections.abc import Mapping

import trio

log = logging.getLogger(__name__)

RESTART_DELAY_S = 1.0  # lets the HTTP response that asked for it reach the client
# Stopping takes well under a second (runners are killed, blocking threads abandoned); past this
# something hangs, and exec ends it anyway: runners read EOF on stdin when our pipe ends close.
FORCE_EXEC_AFTER_S = 5.0


class Restarter:
    def __init__(self, launch_env: Mapping[str, str], delay: float = RESTART_DELAY_S):
        self._env = dict(launch_env)
        self._delay = delay
        self._requested = trio.Event()
        self.pending = False
        self.reason = ""
        self._abandoned = False
        self._watchdog: threading.Timer | None = None
        self._stopping_since = 0.0

    def request(self, reason: str = "requested") -> bool:
        """Schedule a restart; False when one is already pending."""
        if self.pending:
            return False
        self.pending, self.reason = True, reason
        self._requested.set()
        return True

    def abandon(self) -> None:
        """The process is being stopped for good: exit instead of exec'ing."""
        self.pending = False
        self._abandoned = True
        if self._watchdog is not None:
            self._watchdog.cancel()

    async def run(self, stop_node: trio.CancelScope, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        await self._requested.wait()
        await trio.sleep(self._delay)
        log.warning("restarting (%s): stopping services, then exec", self.reason)
        self._stopping_since = time.monotonic()
        self._watchdog = threading.Timer(FORCE_EXEC_AFTER_S, self._force_exec)
        self._watchdog.daemon = True
        self._watchdog.start()
        stop_node.cancel()

    def _force_exec(self) -> None:
        if not self._abandoned:
            log.error("shutdown took over %.0f s; exec'ing anyway", FORCE_EXEC_AFTER_S)
            self.exec_now()

    def exec_now(self) -> None:
        """Replace this process with a fresh `python -m skulk <same args>`; never returns."""
        log.info("exec'ing %.2f s after the stop began", time.monotonic() - self._stopping_since)
        logging.shutdown()
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        _close_on_exec()
        argv = [sys.executable, "-m", "skulk", *sys.argv[1:]]
        os.execve(sys.executable, argv, self._env)


def _close_on_exec() -> None:
    """Mark every descriptor above stderr close-on-exec, so no socket or file leaks across."""
    fd_dir = "/proc/self/fd" if os.path.isdir("/proc/self/fd") else "/dev/fd"
    try:
        fds = [int(name) for name in os.listdir(fd_dir)]
    except OSError:
        fds = list(range(3, 4096))
    for fd in fds:
        if fd > 2:
            try:
                os.set_inheritable(fd, False)
            except OSError:
                pass
