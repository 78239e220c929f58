"""Timings of one request on the API node that owns it, written as a trace when its task asks.

The task's `trace_enabled` was copied from the cluster flag when the master created it, so a
toggle only affects requests made after it.
"""

import logging
import time
from pathlib import Path
from typing import Any

from skulk.api.port import ClusterPort
from skulk.node.trace_stats import RequestTimes, request_events
from skulk.node.traces import merge_trace

log = logging.getLogger(__name__)


class RequestTracer:
    def __init__(self, port: ClusterPort, command_id: str, model_id: str, task_kind: str = "TextGeneration"):
        self.port, self.command_id, self.model_id, self.task_kind = port, command_id, model_id, task_kind
        self.sent = time.time()
        self.task: Any = None
        self.task_seen: float | None = None
        self.first_token: float | None = None
        self.last_token: float | None = None

    def watch(self) -> bool:
        """Whether the master has created this request's task (remembered once seen)."""
        if self.task is None:
            for task in self.port.state.tasks.values():
                if getattr(task, "command_id", None) == self.command_id:
                    self.task, self.task_seen = task, time.time()
                    break
        return self.task is not None

    def token(self) -> None:
        now = time.time()
        self.first_token = self.first_token or now
        self.last_token = now
        self.watch()

    def save(self, **extra: Any) -> Path | None:
        """Merge this node's spans into the trace if the task was traced and this node keeps traces
        (the ranks' spans may be there already); never raises."""
        traces_dir = getattr(self.port, "traces_dir", None)
        if self.task is None or not getattr(self.task, "trace_enabled", False) or traces_dir is None:
            return None
        args = {"nodeId": self.port.node_id, "friendlyName": self.port.friendly_name, "modelId": self.model_id,
                "taskKind": self.task_kind, "commandId": self.command_id, **extra}
        times = RequestTimes(sent=self.sent, closed=time.time(), task_seen=self.task_seen,
                             first_token=self.first_token, last_token=self.last_token)
        try:
            return merge_trace(Path(traces_dir), str(self.task.task_id), request_events(times, args))
        except (OSError, ValueError) as exc:
            log.warning("could not write the trace of task %s: %s", self.task.task_id, exc)
            return None
