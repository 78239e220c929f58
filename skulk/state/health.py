"""Derived per-node health badges for /state. Pure."""

from skulk.types.downloads import DownloadFailed
from skulk.types.ids import NodeId
from skulk.types.state import State
from skulk.types.wire import NodeHeartbeat

GB = 1024**3
UNREACHABLE_AFTER_S = 15.0


def node_health(state: State, beats: dict[NodeId, NodeHeartbeat], ages: dict[NodeId, float]) -> dict:
    health: dict[NodeId, dict] = {}
    for node in set(beats) | set(state.last_seen):
        reasons = []
        for d in state.downloads.get(node, []):
            if isinstance(d, DownloadFailed):
                reasons.append(_reason("error", "download_failed", f"Download of {d.model_id} failed: {d.error_message}", "Retry the placement or check the node's disk and network."))
        hb = beats.get(node)
        if hb is not None and hb.disk is not None:
            free = hb.disk.available.in_bytes
            if free <= 2 * GB:
                reasons.append(_reason("error", "disk_full", f"Only {free / GB:.1f} GB free", "Free disk space on the models volume."))
            elif free < 10 * GB:
                reasons.append(_reason("warn", "disk_low", f"{free / GB:.1f} GB free", "Free disk space soon."))
        age = ages.get(node)
        if age is None or age > UNREACHABLE_AFTER_S:
            reasons.append(_reason("warn", "unreachable", "No heartbeat for over 15 s", "Check that the node is running and reachable."))
        level = "error" if any(r["_level"] == "error" for r in reasons) else "warn" if reasons else "ok"
        health[node] = {"level": level, "reasons": [{k: v for k, v in r.items() if k != "_level"} for r in reasons]}
    return health


def _reason(level: str, code: str, message: str, remediation: str) -> dict:
    return {"_level": level, "code": code, "message": message, "remediation": remediation}
