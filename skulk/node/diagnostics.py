"""The fuller parts of /v1/diagnostics/node: resources, processes, runners, placements, warnings.

Built on demand from the node's live objects; every reading is best effort, so one failing
probe leaves a null rather than failing the whole document.
"""

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


def supervisor_runners(supervisors: Mapping[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for runner_id, sup in supervisors.items():
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
