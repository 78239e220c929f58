"""Deployments, pure: the commands that change them and the reconcile pass that moves instances toward them.

The pass runs on the master's reconcile tick. Everything it needs that is not replicated state
(the time, live nodes, the placement backoff, runner crashes seen since the last pass) comes in as
arguments, and it returns events plus the new backoff, so tests drive it as plain calls.
"""

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from skulk.config.model import DeploymentSettings, RunnerPolicySettings
from skulk.errors import BadRequest, NotFound, SkulkError
from skulk.master import limits, preemption
from skulk.master.serving import instance_is_ready
from skulk.master.validate import deployment_refusal
from skulk.state.apply import apply_event
from skulk.types import commands as cmd
from skulk.types import events as ev
from skulk.types.deployments import MAX_REASON, MAX_RESTARTS_KEPT, Deployment, DeploymentStatus
from skulk.types.runners import RunnerFailed
from skulk.types.state import State
from skulk.types.tasks import TaskStatus

S = DeploymentStatus
Placer = Callable[[State, cmd.PlaceInstance, Any], list]  # dispatch.place: (state, command, ctx) -> events
BACKOFF_BASE_S = 2.0
BACKOFF_MAX_S = 60.0
PRIORITY_ORDER = preemption.PRIORITY_ORDER
HELD = (S.failed, S.paused, S.stopping)  # no placing for these: failed waits for a restart


@dataclass(frozen=True)
class Policy:
    max_restarts: int = RunnerPolicySettings().max_restarts
    restart_window_s: float = RunnerPolicySettings().restart_window_seconds
    expiry_warning_s: float = DeploymentSettings().expiry_warning_seconds
    preempt_idle_s: float | None = DeploymentSettings().preempt_idle_seconds


def policy_of(state: State, local: Mapping[str, Any] | None = None) -> Policy:
    """The cluster-wide knobs from the replicated config (live, every master agrees); a section the
    cluster config does not name comes from the master's own settings (`local`), else the defaults."""
    config, local = state.cluster_config or {}, local or {}
    runner = config.get("runner") or local.get("runner") or {}
    deployments = config.get("deployments") or local.get("deployments") or {}
    try:
        r = RunnerPolicySettings.model_validate(runner) if isinstance(runner, dict) else RunnerPolicySettings()
        d = DeploymentSettings.model_validate(deployments) if isinstance(deployments, dict) else DeploymentSettings()
    except ValueError:
        r, d = RunnerPolicySettings(), DeploymentSettings()  # a bad cluster config never stops reconciling
    return Policy(r.max_restarts, r.restart_window_seconds, d.expiry_warning_seconds, d.preempt_idle_seconds)


@dataclass(frozen=True)
class Backoff:
    attempts: int = 0
    next_at: datetime | None = None
    reason: str | None = None  # the last placement refusal
    instances_seen: int = 0  # instances in the state at that refusal: fewer since means retry now
    preempted_at: datetime | None = None  # when this deployment last stopped others to make room

    def after_refusal(self, now: datetime, reason: str, instances: int = 0) -> "Backoff":
        delay = min(BACKOFF_BASE_S * 2 ** self.attempts, BACKOFF_MAX_S)
        return Backoff(self.attempts + 1, now + timedelta(seconds=delay), reason[:MAX_REASON], instances,
                       self.preempted_at)

    def due(self, now: datetime, instances: int) -> bool:
        """Time to try placing: the backoff ran out, or an instance went away (memory may be free)."""
        return self.next_at is None or now >= self.next_at or instances < self.instances_seen


@dataclass(frozen=True)
class Crash:
    """A runner of a deployment's instance reported RunnerFailed (seen by the master)."""

    deployment_id: str
    at: datetime
    error: str | None = None


@dataclass
class Pass:
    state: State
    events: list = field(default_factory=list)

    def add(self, *events) -> None:
        for e in events:
            self.state = apply_event(self.state, e)
            self.events.append(e)


def instances_of(state: State, deployment_id: str) -> list:
    return sorted((i for i in state.instances.values() if i.deployment_id == deployment_id),
                  key=lambda i: i.instance_id)


def delete_instances(state: State, instance_ids: Sequence[str], reason: str) -> list:
    """Cancel what runs on them, then delete them (the same as DeleteInstance, for several)."""
    gone = set(instance_ids)
    cancels = [ev.TaskStatusUpdated(task_id=tid, task_status=TaskStatus.Cancelled) for tid, t in state.tasks.items()
               if t.instance_id in gone and t.task_status in (TaskStatus.Pending, TaskStatus.Running)]
    return [*cancels, *(ev.InstanceDeleted(instance_id=i, reason=reason[:MAX_REASON]) for i in instance_ids)]


def leaving_nodes(state: State) -> set[str]:
    return set(getattr(state, "node_maintenance", {}) or {})


def draining_nodes(state: State) -> set[str]:
    return {n for n, mode in (getattr(state, "node_maintenance", {}) or {}).items() if mode == "draining"}


def place_one(state: State, d: Deployment, ctx, placer: Placer) -> list:
    """One more instance of `d`, tagged with its id; raises the placement's SkulkError when nothing fits."""
    if d.model_card is None:
        raise NotFound(f"model {d.model_id} has no card")
    excluded = sorted(set(d.excluded_nodes) | leaving_nodes(state))[:1024]
    command = cmd.PlaceInstance(model_card=d.model_card, sharding=d.sharding, instance_meta=d.instance_meta,
                                min_nodes=d.min_nodes, excluded_nodes=excluded, key_id=d.key_id)
    events = placer(state, command, ctx)
    return [_tagged(e, d.deployment_id) for e in events]


def _tagged(e, deployment_id: str):
    if not isinstance(e, ev.InstanceCreated):
        return e
    return e.model_copy(update={"instance": e.instance.model_copy(update={"deployment_id": deployment_id})})


# --- commands -------------------------------------------------------------------------------------

def decide_create(state: State, c: cmd.CreateDeployment, ctx, placer: Placer) -> list:
    """The deployment, normalised by the master, and its first instance when one fits now."""
    refusal = deployment_refusal(state, c.deployment)
    if refusal is not None:
        raise BadRequest(refusal, param="deployment")
    project = limits.placement_project(state, c.deployment.key_id)  # over max_instances: 429 now
    d = c.deployment
    expires = ctx.now + timedelta(seconds=d.lease_seconds) if d.lease_seconds else None
    d = d.model_copy(update={"status": S.pending, "reason": None, "created_at": ctx.now, "restarts": [],
                             "expires_at": expires, "expiry_warned": False, "project": project})
    step = Pass(state)
    step.add(ev.DeploymentCreated(deployment=d))
    try:
        step.add(*place_one(step.state, d, ctx, placer))
    except SkulkError as exc:  # the reconcile pass tries again, with backoff
        step.add(ev.DeploymentStatusChanged(deployment_id=d.deployment_id, status=S.pending,
                                            reason=exc.message[:MAX_REASON]))
        return step.events
    step.add(ev.DeploymentStatusChanged(deployment_id=d.deployment_id, status=S.starting, reason=None))
    return step.events


def _require(state: State, deployment_id: str) -> Deployment:
    d = state.deployments.get(deployment_id)
    if d is None:
        raise NotFound(f"Deployment not found: {deployment_id[:64]}")
    return d


def decide_delete(state: State, c: cmd.DeleteDeployment, ctx) -> list:
    d = _require(state, c.deployment_id)
    reason = (c.reason or "deployment deleted")[:MAX_REASON]
    ids = [i.instance_id for i in instances_of(state, d.deployment_id)]
    return [*delete_instances(state, ids, reason), ev.DeploymentDeleted(deployment_id=d.deployment_id, reason=reason)]


def decide_restart(state: State, c: cmd.RestartDeployment, ctx) -> list:
    """Fresh instances and a clean slate: a failed deployment is placed again, its crashes forgotten."""
    d = _require(state, c.deployment_id)
    ids = [i.instance_id for i in instances_of(state, d.deployment_id)]
    fresh = d.model_copy(update={"status": S.pending, "reason": "restarted", "restarts": []})
    return [*delete_instances(state, ids, "deployment restarted"), ev.DeploymentUpdated(deployment=fresh)]


def decide_extend(state: State, c: cmd.ExtendDeploymentLease, ctx) -> list:
    d = _require(state, c.deployment_id)
    if d.expires_at is None:
        raise BadRequest(f"deployment {d.deployment_id} has no lease to extend", param="deployment_id")
    base = max(d.expires_at, ctx.now)
    extended = d.model_copy(update={"expires_at": base + timedelta(seconds=c.seconds), "expiry_warned": False})
    return [ev.DeploymentUpdated(deployment=extended)]


def decide_set_paused(state: State, c: cmd.SetDeploymentPaused, ctx) -> list:
    d = _require(state, c.deployment_id)
    if c.paused:
        if d.status == S.paused:
            return []
        return [ev.DeploymentStatusChanged(deployment_id=d.deployment_id, status=S.paused,
                                           reason=(c.reason or "paused")[:MAX_REASON])]
    if d.status != S.paused:
        return []
    return [ev.DeploymentStatusChanged(deployment_id=d.deployment_id, status=S.pending, reason=c.reason)]


# --- the reconcile pass -----------------------------------------------------------------------------

def reconcile_deployments(state: State, ctx, placer: Placer, backoff: Mapping[str, Backoff],
                          crashes: Sequence[Crash] = (), uses: preemption.Uses | None = None,
                          ) -> tuple[list, dict[str, Backoff]]:
    """Events that move every deployment toward its desired state, and the placement backoff after them.
    With `uses` (the master's record of requests) a deployment that does not fit may preempt idle
    lower-priority ones."""
    policy = policy_of(state, getattr(ctx, "local_config", None))
    uses = replace(uses, idle_s=policy.preempt_idle_s) if uses is not None else None
    step = Pass(state)
    after: dict[str, Backoff] = {}
    ordered = sorted(state.deployments.values(),
                     key=lambda d: (PRIORITY_ORDER.get(d.priority, 1), d.created_at or ctx.now, d.deployment_id))
    for d in ordered:
        new_crashes = [c for c in crashes if c.deployment_id == d.deployment_id]
        if _lease(step, d, ctx.now, policy) or _crash_loop(step, d, new_crashes, ctx.now, policy):
            continue
        d = step.state.deployments[d.deployment_id]
        if d.status in HELD:
            continue
        after[d.deployment_id] = _converge(step, d, ctx, placer, backoff.get(d.deployment_id, Backoff()), uses)
    return step.events, after


def _lease(step: Pass, d: Deployment, now: datetime, policy: Policy) -> bool:
    """Warn once before the lease ends; at its end remove the deployment. True when it is gone."""
    if d.expires_at is None:
        return False
    if now >= d.expires_at:
        ids = [i.instance_id for i in instances_of(step.state, d.deployment_id)]
        step.add(ev.LeaseExpired(deployment_id=d.deployment_id), *delete_instances(step.state, ids, "lease expired"),
                 ev.DeploymentDeleted(deployment_id=d.deployment_id, reason="lease expired"))
        return True
    warning = min(policy.expiry_warning_s, float(d.lease_seconds or policy.expiry_warning_s))
    if not d.expiry_warned and now >= d.expires_at - timedelta(seconds=warning):
        step.add(ev.LeaseExpiring(deployment_id=d.deployment_id, expires_at=d.expires_at))
    return False


def _crash_loop(step: Pass, d: Deployment, crashes: Sequence[Crash], now: datetime, policy: Policy) -> bool:
    """Record crashes in the deployment; too many in the window stop it as failed. True when it failed."""
    if not crashes or d.status in (S.failed, S.stopping):
        return False
    window_start = now - timedelta(seconds=policy.restart_window_s)
    restarts = [t for t in [*d.restarts, *(c.at for c in crashes)] if t > window_start][-MAX_RESTARTS_KEPT:]
    step.add(ev.DeploymentUpdated(deployment=d.model_copy(update={"restarts": restarts})))
    limit = policy.max_restarts if d.max_restarts is None else d.max_restarts
    if len(restarts) < max(limit, 1):
        return False
    error = next((c.error for c in reversed(crashes) if c.error), None) or "no error message"
    cause = f"{len(restarts)} runner crashes in {policy.restart_window_s:g} s (max_restarts {limit}); last error: {error}"
    ids = [i.instance_id for i in instances_of(step.state, d.deployment_id)]
    step.add(ev.DeploymentStatusChanged(deployment_id=d.deployment_id, status=S.failed, reason=cause[:MAX_REASON]),
             *delete_instances(step.state, ids, "deployment failed: crash loop"))
    return True


def _converge(step: Pass, d: Deployment, ctx, placer: Placer, backoff: Backoff,
              uses: preemption.Uses | None = None) -> Backoff:
    """Place up to `replicas`, trim extras, let draining nodes go once enough run elsewhere, set status."""
    leaving = leaving_nodes(step.state)
    mine = instances_of(step.state, d.deployment_id)
    staying = [i for i in mine if not leaving & set(i.node_ids())]
    if len(staying) < d.replicas and preemption.yields_to(step.state, d):
        return backoff  # preempted: its preemptor is placed first, its reason says so
    while len(staying) < d.replicas and backoff.due(ctx.now, len(step.state.instances)):
        try:
            placed = place_one(step.state, d, ctx, placer)
        except SkulkError as exc:
            if _preempt(step, d, ctx, placer, backoff, uses):  # placed on a later pass, once that memory is free
                backoff = Backoff(reason="waiting for preempted instances to free their memory", preempted_at=ctx.now)
            else:
                backoff = backoff.after_refusal(ctx.now, exc.message, len(step.state.instances))
            break
        if step.state.deployments[d.deployment_id].preempted_by:  # back: it no longer waits
            step.add(ev.DeploymentUpdated(deployment=step.state.deployments[d.deployment_id].model_copy(
                update={"preempted_by": None})))
        step.add(*placed)
        backoff = Backoff()
        staying = [i for i in instances_of(step.state, d.deployment_id) if not leaving & set(i.node_ids())]
    if len(staying) > d.replicas:  # replicas lowered or a race placed one too many: drop unready ones first
        extra = sorted(staying, key=lambda i: (instance_is_ready(step.state, i.instance_id), i.instance_id))
        extra = extra[:len(staying) - d.replicas]
        step.add(*delete_instances(step.state, [i.instance_id for i in extra], "more instances than replicas"))
        staying = [i for i in staying if i not in extra]
    ready = sum(instance_is_ready(step.state, i.instance_id) for i in staying)
    draining = draining_nodes(step.state)
    if ready >= d.replicas:  # planned: the replacements serve, so the drained ones stop
        gone = [i.instance_id for i in mine if draining & set(i.node_ids()) and i.instance_id in step.state.instances]
        step.add(*delete_instances(step.state, gone, "node drained"))
    # status counts what serves now, a draining node's instance included: a planned move never alarms
    present = instances_of(step.state, d.deployment_id)
    serving = sum(instance_is_ready(step.state, i.instance_id) for i in present)
    _set_status(step, d, len(present), serving, backoff.reason)
    return backoff


def _preempt(step: Pass, d: Deployment, ctx, placer: Placer, backoff: Backoff,
             uses: preemption.Uses | None) -> bool:
    """Stop just enough idle lower-priority instances for `d` to fit; True when some were stopped."""
    settling = backoff.preempted_at is not None and (ctx.now - backoff.preempted_at).total_seconds() < preemption.SETTLE_S
    if uses is None or settling:
        return False
    victims = preemption.choose_victims(step.state, d, ctx, lambda s, c: place_one(s, d, c, placer), uses)
    if not victims:
        return False
    reason, updates = preemption.preempted_notes(step.state, d, victims)
    step.add(*delete_instances(step.state, victims, reason), *updates)
    return True


def _set_status(step: Pass, d: Deployment, placed: int, ready: int, refusal: str | None) -> None:
    if ready >= d.replicas:
        status, reason = S.ready, None
    elif ready:
        status, reason = S.degraded, refusal
    elif placed:
        status, reason = S.starting, refusal
    else:
        status, reason = S.pending, refusal
    current = step.state.deployments[d.deployment_id]
    if (current.status, current.reason) != (status, reason):
        step.add(ev.DeploymentStatusChanged(deployment_id=d.deployment_id, status=status, reason=reason))


def crashes_in(before: State, indexed: Sequence[ev.IndexedEvent], now: datetime) -> list[Crash]:
    """Runner failures of deployment instances among newly indexed events (a new failure, not a repeat)."""
    last: dict[str, object] = {}
    found: list[Crash] = []
    for ie in indexed:
        e = ie.event
        if not isinstance(e, ev.RunnerStatusUpdated):
            continue
        previous = last.get(e.runner_id, before.runners.get(e.runner_id))
        last[e.runner_id] = e.runner_status
        if not isinstance(e.runner_status, RunnerFailed) or isinstance(previous, RunnerFailed):
            continue
        dep = next((i.deployment_id for i in before.instances.values()
                    if e.runner_id in i.shard_assignments.runner_to_shard), None)
        if dep is not None:
            found.append(Crash(dep, now, (e.runner_status.error_message or "")[:500] or None))
    return found


def retag(events: list, deployment_id: str | None) -> list:
    """A re-placed instance (a refusal widened it) still serves its deployment."""
    return events if deployment_id is None else [_tagged(e, deployment_id) for e in events]


def auto_deployment(state: State, c: cmd.PlaceInstance, ctx, placer: Placer) -> list:
    """The default model as a one-replica deployment and its instance; raises when it does not fit yet."""
    d = Deployment(deployment_id=f"default-{ctx.new_id()}"[:64], model_id=c.model_card.model_id,
                   model_card=c.model_card, sharding=c.sharding, instance_meta=c.instance_meta,
                   status=S.starting, created_at=ctx.now, auto_placed=True, pinned=False)
    placed = [e.model_copy(update={"auto_placed": True}) if isinstance(e, ev.InstanceCreated) else e
              for e in place_one(state, d, ctx, placer)]
    return [ev.DeploymentCreated(deployment=d), *placed]


def with_deployment(state: State, c: cmd.DeleteInstance, events: list) -> list:
    """An operator deleting a deployment's last instance means the deployment: it goes too (a worker's
    own deletion carries a reason and leaves the deployment to the reconciler, which counts crashes)."""
    inst = state.instances.get(c.instance_id)
    d = state.deployments.get(inst.deployment_id) if inst is not None and inst.deployment_id else None
    if d is None or c.reason is not None or len(instances_of(state, d.deployment_id)) > 1:
        return events
    return [*events, ev.DeploymentDeleted(deployment_id=d.deployment_id, reason="its last instance was deleted")]
