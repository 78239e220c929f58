"""Which indexed events an operator hears about: (state before, event, state after) -> notifications.

Pure: no clock (the caller passes `now`), no I/O. The only memory across events is the set of
nodes reported lost, so that their return is a `node.recovered` and a first join is not.
Planned changes (delete, drain, lease expiry, pause) are never reported as failures.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from skulk.types import events as ev
from skulk.types.deployments import Deployment, DeploymentStatus as DS
from skulk.types.state import State

KINDS = ("deployment.ready", "deployment.failed", "deployment.paused", "deployment.woken",
         "lease.expiring", "lease.expired", "node.lost", "node.recovered")
MAX_LOST_REMEMBERED = 1024  # lost nodes kept to recognise their return; a bound like the telemetry's
_DEPLOYMENT_EVENTS = (ev.DeploymentCreated, ev.DeploymentUpdated, ev.DeploymentStatusChanged)
_AWAKE = (DS.starting, DS.ready)


@dataclass(frozen=True)
class Notification:
    event: str  # one of KINDS
    message: str
    at: datetime
    deployment_id: str | None = None
    model_id: str | None = None
    node_id: str | None = None

    def body(self) -> dict:
        return {"event": self.event, "deployment_id": self.deployment_id, "model_id": self.model_id,
                "node_id": self.node_id, "message": self.message, "at": self.at.isoformat()}


def notifications_for(before: State, indexed: ev.IndexedEvent, after: State, *, now: datetime,
                      lost: frozenset[str] = frozenset()) -> tuple[list[Notification], frozenset[str]]:
    """The notifications one indexed event raises, and the lost-node memory after it."""
    e = indexed.event
    if isinstance(e, ev.StateSnapshotHydrated):
        return [], lost  # a new session's seed: what it carries was reported by its own master
    if isinstance(e, _DEPLOYMENT_EVENTS):
        dep_id = e.deployment.deployment_id if hasattr(e, "deployment") else e.deployment_id
        return _status_change(before.deployments.get(dep_id), after.deployments.get(dep_id), now), lost
    if isinstance(e, ev.LeaseExpiring):
        d = after.deployments.get(e.deployment_id)
        return [_about(d, e.deployment_id, "lease.expiring", now,
                       f"lease of deployment {e.deployment_id} expires at {e.expires_at.isoformat()}")], lost
    if isinstance(e, ev.LeaseExpired):
        d = before.deployments.get(e.deployment_id)
        return [_about(d, e.deployment_id, "lease.expired", now,
                       f"lease of deployment {e.deployment_id} expired: it is being stopped")], lost
    if isinstance(e, ev.NodeTimedOut):
        return _node_lost(before, e.node_id, now, lost)
    if isinstance(e, ev.NodeGatheredInfo) and e.node_id in lost:
        return ([Notification("node.recovered", f"node {e.node_id} is back", now, node_id=e.node_id)],
                lost - {e.node_id})
    return [], lost


def _status_change(old: Deployment | None, new: Deployment | None, now: datetime) -> list[Notification]:
    if new is None or (old is not None and old.status == new.status):
        return []  # deleted, or no change of status: nothing new to say
    was = old.status if old is not None else None
    dep, out = new.deployment_id, []
    if was == DS.paused and new.status in _AWAKE:
        out.append(_about(new, dep, "deployment.woken", now, f"deployment {dep} ({new.model_id}) is waking up"))
    if new.status == DS.ready:
        out.append(_about(new, dep, "deployment.ready", now, f"deployment {dep} ({new.model_id}) is ready"))
    elif new.status == DS.paused:
        out.append(_about(new, dep, "deployment.paused", now,
                          f"deployment {dep} ({new.model_id}) is paused" + _because(new.reason)))
    elif new.status == DS.failed and was != DS.stopping:  # a failure while stopping is the stop itself
        out.append(_about(new, dep, "deployment.failed", now,
                          f"deployment {dep} ({new.model_id}) failed" + _because(new.reason)))
    return out


def _node_lost(before: State, node_id: str, now: datetime,
               lost: frozenset[str]) -> tuple[list[Notification], frozenset[str]]:
    if node_id not in before.last_seen and node_id not in before.topology.nodes:
        return [], lost  # already gone: its loss was reported once
    if node_id in before.node_maintenance:
        return [], lost  # cordoned or draining: the operator is taking it out of service
    kept = lost | {node_id}
    if len(kept) > MAX_LOST_REMEMBERED:
        kept = frozenset(sorted(kept)[-MAX_LOST_REMEMBERED:]) | {node_id}
    hosted = sorted({i.shard_assignments.model_id for i in before.instances.values()
                     if node_id in i.shard_assignments.node_to_runner})
    tail = f"; it hosted {', '.join(hosted)}" if hosted else ""
    return [Notification("node.lost", f"node {node_id} was lost (no heartbeat){tail}", now, node_id=node_id)], kept


def _about(d: Deployment | None, dep_id: str, kind: str, now: datetime, message: str) -> Notification:
    return Notification(kind, message, now, deployment_id=dep_id, model_id=d.model_id if d is not None else None)


def _because(reason: str | None) -> str:
    return f": {reason}" if reason else ""


def _needs_state(event) -> bool:
    return isinstance(event, (*_DEPLOYMENT_EVENTS, ev.LeaseExpiring, ev.LeaseExpired, ev.NodeTimedOut))


def notifications_for_batch(before: State, indexed: list[ev.IndexedEvent], *, now: datetime,
                            lost: frozenset[str], apply: Callable[[State, ev.IndexedEvent], State]
                            ) -> tuple[list[Notification], frozenset[str]]:
    """A committed batch, from the state before it: each event judged against its own before and
    after. Batches with nothing that needs a state (heartbeats, tasks) are not replayed."""
    out: list[Notification] = []
    if not any(_needs_state(ie.event) for ie in indexed):
        for ie in indexed:
            if isinstance(ie.event, ev.NodeGatheredInfo) and ie.event.node_id in lost:
                found, lost = notifications_for(before, ie, before, now=now, lost=lost)
                out.extend(found)
        return out, lost
    state = before
    for ie in indexed:
        after = apply(state, ie)
        found, lost = notifications_for(state, ie, after, now=now, lost=lost)
        out.extend(found)
        state = after
    return out, lost
