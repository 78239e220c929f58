"""The fuller parts of /v1/diagnostics/node: resources, processes, runners, placements, warnings.

Built on demand from the node's live objects; every reading is best effort, so one failing
probe leaves a null rather than failing the whole document.
"""

import functools
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from skulk import probe
from skulk.probe.processes import process_table
from skulk.types.ids import NodeId, SessionId
from skulk.types.runners import RunnerFailed
from skulk.types.state import State

log = logging.getLogger(__name__)

DISK_LOW_BYTES = 10 * 1024**3
RECENT_RUNNER_ENTRIES = 20


def dump(model: Any) -> Any:
    return model.model_dump(mode="json", by_alias=True) if model is not None else None


def _try(read: Callable[[], Any]) -> Any:
    try:
        return read()
    except Exception as exc:  # noqa: BLE001 - a diagnostic must not fail on one probe
        log.debug("diagnostics probe failed: %s", exc)
        return None


def status_name(status: Any) -> str:
    return type(status).__name__


@functools.cache
def skulk_commit() -> str | None:
    """The git commit of a source checkout of skulk (None when installed from a package)."""
    def read() -> str | None:
        git = Path(__file__).resolve().parents[2] / ".git"
        if git.is_file():  # a worktree: "gitdir: <path>"
            git = Path(git.read_text().split(":", 1)[1].strip())
        head = (git / "HEAD").read_text().strip()
        if not head.startswith("ref: "):
            return head
        ref = head[5:]
        if (git / ref).is_file():
            return (git / ref).read_text().strip()
        for line in (git / "packed-refs").read_text().splitlines():
            if line.endswith(" " + ref):
                return line.split()[0]
        return None
    return _try(read)


def resources(gathered: Any, home: Path) -> dict[str, Any]:
    """The heartbeat's last memory reading next to fresh ones (they differ when it is stale)."""
    return {
        "gatheredMemory": dump(gathered.memory) if gathered is not None else None,
        "currentMemory": _try(lambda: dump(probe.read_memory())),
        "currentWired": None,  # macOS only (vm_stat wired pages); not measured on this platform
        "disk": _try(lambda: dump(probe.read_disk(home))),
        "system": _try(lambda: dump(probe.read_system())),
        "network": _try(lambda: [dump(i) for i in probe.read_interfaces()]) or [],
    }


def supervisor_runners(supervisors: Mapping[str, Any], recorder: Any = None) -> list[dict[str, Any]]:
    """One row per supervised runner; with the flight recorder, since when it has had its status
    and its latest entries."""
    rows = []
    for runner_id, sup in supervisors.items():
        recent = recorder.entries(runner_id=runner_id) if recorder is not None else []
        changes = [e for e in recent if e["kind"] == "runner_status"]
        rows.append({
            "runnerId": runner_id,
            "instanceId": getattr(sup.instance, "instance_id", None),
            "modelId": getattr(getattr(sup.instance, "shard_assignments", None), "model_id", None),
            "rank": getattr(sup, "rank", None),
            "worldSize": getattr(sup, "world_size", None),
            "pid": getattr(sup, "pid", None),
            "status": status_name(getattr(sup, "status", None)),
            "activeTasks": sorted(getattr(sup, "active_tasks", ())),
            "logFile": str(path) if (path := getattr(getattr(sup, "log_file", None), "path", None)) else None,
            "statusSince": changes[-1]["at"] if changes else None,
            "recentEntries": recent[-RECENT_RUNNER_ENTRIES:],
        })
    return rows


def processes(supervisors: Mapping[str, Any]) -> list[dict[str, Any]]:
    roles = {sup.pid: "runner" for sup in supervisors.values() if getattr(sup, "pid", None)}
    return _try(lambda: process_table(roles)) or []


def placements(state: State, node_id: NodeId, session: SessionId | None) -> list[dict[str, Any]]:
    master = session.master_node_id if session else None
    rows = []
    for instance_id, inst in state.instances.items():
        assignments = inst.shard_assignments
        runners, warnings = [], []
        for node, runner_id in assignments.node_to_runner.items():
            status = state.runners.get(runner_id)
            runners.append({"runnerId": runner_id, "nodeId": node,
                            "status": status_name(status) if status is not None else None})
            if isinstance(status, RunnerFailed):
                warnings.append(f"Runner {runner_id} on {node} failed: {status.error_message or 'no reason given'}")
            elif status is None:
                warnings.append(f"Runner {runner_id} on {node} has not reported a status")
        nodes = list(assignments.node_to_runner)
        rows.append({"instanceId": instance_id, "modelId": assignments.model_id, "masterNodeId": master,
                     "masterIsPlacementNode": master in nodes, "localNodeIsPlacementNode": node_id in nodes,
                     "placementNodeIds": nodes, "runners": runners, "warnings": warnings})
    return rows


def runner_synopses(state: State, timeline: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every placed runner in the cluster: where it runs, its status, its open tasks, and when
    the merged timeline last mentioned it."""
    last_at: dict[str, str] = {}
    for entry in timeline:
        if entry.get("runnerId"):
            last_at[entry["runnerId"]] = entry.get("at")
    rows = []
    for instance_id, inst in state.instances.items():
        assignments = inst.shard_assignments
        open_tasks = sorted(tid for tid, task in state.tasks.items()
                            if task.instance_id == instance_id and task.task_status.value in ("Pending", "Running"))
        for node, runner_id in assignments.node_to_runner.items():
            shard = assignments.runner_to_shard.get(runner_id)
            status = state.runners.get(runner_id)
            rows.append({"runnerId": runner_id, "nodeId": node, "instanceId": instance_id,
                         "modelId": assignments.model_id, "rank": getattr(shard, "device_rank", None),
                         "worldSize": getattr(shard, "world_size", None),
                         "status": status_name(status) if status is not None else None,
                         "error": getattr(status, "error_message", None), "openTaskIds": open_tasks,
                         "lastEntryAt": last_at.get(runner_id)})
    return rows


def node_warnings(*, event_log_mode: str, disk: dict[str, Any] | None, placements_: list[dict[str, Any]],
                  node_id: NodeId, restart_pending: bool, session: SessionId | None,
                  api_event_log_mode: str = "disabled") -> list[str]:
    warnings = []
    if session is None:
        warnings.append("No cluster session yet: this node has not finished its first election")
    if event_log_mode == "counting_only":
        warnings.append("The master event log is in counting-only mode (disk trouble or free space under "
                        "the floor): events are indexed and served but not written to disk")
    if api_event_log_mode == "counting_only":
        warnings.append("The API event log is in counting-only mode (disk trouble or free space under the "
                        "floor): events are applied but not written, so GET /events serves fewer of them")
    available = ((disk or {}).get("available") or {}).get("inBytes")
    if available is not None and available < DISK_LOW_BYTES:
        warnings.append(f"Low disk space on the node home volume: {available / 1024**3:.1f} GiB free")
    for placement in placements_:
        if placement["localNodeIsPlacementNode"]:
            warnings.extend(w for w in placement["warnings"] if f" on {node_id} " in w)
    if restart_pending:
        warnings.append("A restart is pending")
    return warnings
