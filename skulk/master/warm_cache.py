"""The warm cache, pure: which idle deployments to pause, which paused ones to drop to cold, and
the wake a request for a paused deployment causes.

A paused deployment keeps its instances: their runners free the model but stay alive (the weights
stay staged and in the page cache), so a wake reloads in place. Over `warm_cache.max_ram_gb` on a
node the least recently used paused deployment there loses its instances (cold: runners stopped);
its next wake places it again. The last-use times are the master's own record of task creation
(`UseTracker`); a new master counts every deployment as used when it started.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from skulk.config.model import WarmCacheSettings
from skulk.types import events as ev
from skulk.types.deployments import Deployment, DeploymentStatus
from skulk.types.ids import InstanceId, NodeId
from skulk.types.state import State
from skulk.types.tasks import TaskStatus

S = DeploymentStatus
GIB = 1024**3
PAUSABLE = (S.ready, S.degraded)  # never pause one still starting, failed or stopping
ACTIVE = (TaskStatus.Pending, TaskStatus.Running)
DROPPED = "warm cache: dropped to cold (over warm_cache.max_ram_gb)"
WOKEN = "woken by a request"


@dataclass(frozen=True)
class WarmPolicy:
    keep_alive_s: float | None = None  # None: never pause (unless a deployment sets its own)
    max_ram_bytes: int | None = None  # per node; None: no cap
    busy_guard_s: float = 30.0


def policy_of(state: State, local: Mapping[str, Any] | None = None) -> WarmPolicy:
    """The cluster-wide knobs from the replicated config (live); until it names the section, the
    master's own settings (`local`); a bad value falls back to defaults."""
    raw = (state.cluster_config or {}).get("warm_cache") or (local or {}).get("warm_cache") or {}
    try:
        s = WarmCacheSettings.model_validate(raw) if isinstance(raw, dict) else WarmCacheSettings()
    except ValueError:
        s = WarmCacheSettings()
    cap = None if s.max_ram_gb is None else int(s.max_ram_gb * GIB)
    return WarmPolicy(s.keep_alive_seconds or None, cap, s.busy_guard_seconds)


def keep_alive_of(d: Deployment, policy: WarmPolicy) -> float | None:
    """The deployment's own keep-alive wins; 0 or None means it never pauses."""
    own = d.keep_alive_seconds if d.keep_alive_seconds is not None else policy.keep_alive_s
    return float(own) if own else None


def instances_of(state: State, deployment_id: str) -> list[InstanceId]:
    return sorted(i for i, inst in state.instances.items() if inst.deployment_id == deployment_id)


def in_flight(state: State, deployment_id: str) -> bool:
    mine = set(instances_of(state, deployment_id))
    return any(t.instance_id in mine and t.task_status in ACTIVE for t in state.tasks.values())


def to_pause(state: State, now: datetime, last_used: Mapping[str, datetime], since: datetime,
             policy: WarmPolicy) -> list[str]:
    """Deployments idle past their keep-alive: not pinned, nothing in flight, outside the busy guard."""
    out = []
    for dep_id, d in sorted(state.deployments.items()):
        keep = keep_alive_of(d, policy)
        if d.pinned or keep is None or d.status not in PAUSABLE or in_flight(state, dep_id):
            continue
        idle_s = (now - max(last_used.get(dep_id, since), since)).total_seconds()
        if idle_s >= keep and idle_s >= policy.busy_guard_s:
            out.append(dep_id)
    return out


def _warm_bytes(state: State, dep_id: str) -> dict[NodeId, int]:
    """What a paused deployment keeps warm on each node: its weights' share there."""
    held: dict[NodeId, int] = {}
    for iid in instances_of(state, dep_id):
        sa = state.instances[iid].shard_assignments
        shards = list(sa.runner_to_shard.values())
        if not shards:
            continue
        share = shards[0].model_card.storage_size.in_bytes // max(len(shards), 1)
        for node in sa.node_to_runner:
            held[node] = held.get(node, 0) + share
    return held


def to_drop(state: State, paused: Iterable[str], last_used: Mapping[str, datetime], since: datetime,
            policy: WarmPolicy) -> list[str]:
    """Paused deployments to drop to cold, least recently used first, until every node is under the cap."""
    if policy.max_ram_bytes is None:
        return []
    warm = {d: _warm_bytes(state, d) for d in paused if not in_flight(state, d)}
    warm = {d: held for d, held in warm.items() if held}
    order = sorted(warm, key=lambda d: (last_used.get(d, since), d))
    dropped: list[str] = []
    for node in sorted({n for held in warm.values() for n in held}):
        total = sum(held.get(node, 0) for d, held in warm.items() if d not in dropped)
        for dep_id in order:
            if total <= policy.max_ram_bytes:
                break
            if dep_id not in dropped and node in warm[dep_id]:
                dropped.append(dep_id)
                total -= warm[dep_id][node]
    return dropped


def warm_events(state: State, now: datetime, last_used: Mapping[str, datetime], since: datetime,
                local: Mapping[str, Any] | None = None) -> list:
    """The reconcile pass's warm-cache events: pauses first, then the cold drops over the cap."""
    policy = policy_of(state, local)
    pausing = to_pause(state, now, last_used, since, policy)
    events: list = []
    for dep_id in pausing:
        d = state.deployments[dep_id]
        idle = (now - max(last_used.get(dep_id, since), since)).total_seconds()
        events.append(ev.DeploymentStatusChanged(deployment_id=dep_id, status=S.paused,
                                                 reason=f"idle for {idle:.0f} s (keep-alive {keep_alive_of(d, policy):g} s)"))
    paused = [d for d, dep in state.deployments.items() if dep.status == S.paused] + pausing
    for dep_id in to_drop(state, paused, last_used, since, policy):
        events.extend(ev.InstanceDeleted(instance_id=i, reason=DROPPED) for i in instances_of(state, dep_id))
    return events


def with_wakes(state: State, events: list) -> list:
    """A task created on a paused deployment's instance wakes that deployment (status pending)."""
    woken: list[str] = []
    for e in events:
        if not isinstance(e, ev.TaskCreated):
            continue
        inst = state.instances.get(e.task.instance_id)
        dep_id = inst.deployment_id if inst is not None else None
        d = state.deployments.get(dep_id) if dep_id else None
        if d is not None and d.status == S.paused and dep_id not in woken:
            woken.append(dep_id)
    return events + [ev.DeploymentStatusChanged(deployment_id=d, status=S.pending, reason=WOKEN) for d in woken]


def paused_instances(state: State, model_id: str, exclude: Iterable[InstanceId] = ()) -> list[InstanceId]:
    """The model's instances whose deployment is paused: a request may go there and wake it."""
    skip = set(exclude)
    out = []
    for iid, inst in sorted(state.instances.items()):
        d = state.deployments.get(inst.deployment_id) if inst.deployment_id else None
        if inst.shard_assignments.model_id == model_id and iid not in skip and d is not None and d.status == S.paused:
            out.append(iid)
    return out


def paused_deployment_for(state: State, model_id: str) -> str | None:
    """A paused deployment of the model (the first by id), for a request that finds no instance."""
    return next((d for d, dep in sorted(state.deployments.items())
                 if dep.model_id == model_id and dep.status == S.paused), None)


@dataclass
class UseTracker:
    """The master's record of each deployment's last request (task created) or wake. No I/O."""

    since: datetime
    last_used: dict[str, datetime] = field(default_factory=dict)

    def observe(self, state: State, indexed: Iterable[ev.IndexedEvent], now: datetime) -> None:
        for ie in indexed:
            e = ie.event
            if isinstance(e, ev.TaskCreated):
                inst = state.instances.get(e.task.instance_id)
                if inst is not None and inst.deployment_id:
                    self.last_used[inst.deployment_id] = now
            elif isinstance(e, ev.DeploymentStatusChanged) and e.status != S.paused:
                self.last_used[e.deployment_id] = now  # a wake or a (re)start is a use: no pause at once
            elif isinstance(e, ev.DeploymentDeleted):
                self.last_used.pop(e.deployment_id, None)
