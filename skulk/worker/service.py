"""WorkerService: the trio shell around the pure planner. Owns this node's runner supervisors."""

import logging
from collections.abc import Callable
from dataclasses import replace

from collections.abc import Awaitable
from typing import TYPE_CHECKING

import trio

from skulk.faults import count, isolate
from skulk.routing.service import EventRouter
from skulk.types.priority import DEFAULT_PRIORITY
from skulk.types.commands import DeleteInstance, RefuseInstancePlacement
from skulk.types.events import RunnerStatusUpdated, TaskFailed, TracesCollected
from skulk.types.ids import NodeId, RunnerId
from skulk.types.runners import RunnerFailed, RunnerIdle, RunnerReady, RunnerRunning, RunnerShutdown
from skulk.worker.params import ParamsStore
from skulk.worker.plan import (
    Cancel, FailTask, Forward, LocalRunner, Spawn, Step, Stop, WorkerPlanInput, awaiting_params, plan,
)

if TYPE_CHECKING:
    from skulk.runner.outputs import RunnerTraces
    from skulk.runner.supervisor import RunnerOutput, RunnerSupervisor

log = logging.getLogger(__name__)
_SERVING = (RunnerReady, RunnerRunning)

SupervisorFactory = Callable[..., "RunnerSupervisor"]
OutputSink = Callable[[object, "RunnerOutput"], None]  # (task, output) for rank 0's chunks
Recorder = Callable[..., object]  # (kind, **camelCase fields): the node's flight recorder
SPAWN_RETRY_S = 5.0  # a runner whose start raised is tried again after this, doubling...
SPAWN_RETRY_MAX_S = 120.0  # ...up to this (the crash breaker stops it for good after 3 in 60 s)


class WorkerService:
    def __init__(self, node_id: NodeId, router: EventRouter, make_supervisor: SupervisorFactory,
                 send_output: OutputSink, *, send_command: Callable[[object], Awaitable[None]] | None = None,
                 fits: Callable[[object], str | None] = lambda shard: None, plan_interval: float = 0.5,
                 record: Recorder | None = None, params: ParamsStore | None = None):
        self.node_id = node_id
        self._router = router
        self._make_supervisor = make_supervisor
        self._send_output = send_output
        self._plan_interval = plan_interval
        self._send_command = send_command
        self._fits = fits
        self._record: Recorder = record or (lambda kind, **fields: None)
        self._refused: set = set()
        self.local: dict[RunnerId, LocalRunner] = {}
        self.supervisors: dict[RunnerId, "RunnerSupervisor"] = {}
        self._breakers: dict = {}
        self._retry_at: dict[RunnerId, tuple[float, float]] = {}  # failed start: (when, last backoff)
        self._wake = trio.Event()
        self._synced_session = None
        # Request params from the API nodes (see worker/params.py); their arrival wakes the planner.
        self.params = params if params is not None else ParamsStore()
        self.params.on_put = lambda: self._wake.set()
        self._waiting: dict = {}  # task -> when first seen here without params
        self._given_up: set = set()  # tasks failed for missing params

    def on_session_changed(self, *_args) -> None:
        """A new session drops runner records and tasks: re-report runners, forget old tasks."""
        for rid, local in self.local.items():
            self.local[rid] = replace(local, forwarded=frozenset(), active=frozenset())
            sup = self.supervisors.get(rid)
            for tid in local.active:
                if sup is not None:
                    self._call(rid, sup.cancel, tid)
        self._synced_session = None
        self._wake.set()

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            task_status.started()
            try:
                while True:
                    with trio.move_on_after(self._plan_interval):
                        await _first_of(self._wake, self._router.changed)
                    self._wake = trio.Event()
                    with isolate("worker.tick"):
                        self._tick()
            finally:
                with trio.CancelScope(shield=True):
                    for sup in list(self.supervisors.values()):
                        await sup.shutdown()

    def _tick(self) -> None:
        state = self._router.state
        if state.last_event_applied_idx < 0:
            return  # a new session's state has not arrived yet: never act on an empty view
        if self._synced_session != self._router.session:
            self._synced_session = self._router.session
            for rid, local in self.local.items():  # the new session has no runner records yet
                self._router.send_event(RunnerStatusUpdated(runner_id=rid, runner_status=local.status))
        self._retry_failed_starts()
        self.params.prune(set(state.tasks))
        self._given_up &= set(state.tasks)
        for action in self._plan(state):
            try:
                self._execute(action)
            except Exception as exc:  # noqa: BLE001 - one action's bug fails its runner, not the node
                self._action_failed(action, exc)
        self._prune_forwarded(state)

    def _plan(self, state) -> list:
        """The planner's actions; if it raises, plan each instance on its own so one malformed
        instance (from an old log, or a bug) stops only itself."""
        base = self._plan_input(state)
        try:
            return plan(base)
        except Exception as exc:  # noqa: BLE001 - fall back to per-instance planning
            count("worker.plan_failed", f"{type(exc).__name__}: {exc}"[:500])
        actions: list = []
        for iid in [*state.instances, None]:  # None: runners whose instance is gone
            only = {iid: state.instances[iid]} if iid is not None else {}
            local = {rid: r for rid, r in self.local.items()
                     if r.instance_id == iid or (iid is None and r.instance_id not in state.instances)}
            with isolate("worker.plan_instance"):
                actions += plan(replace(base, state=state.model_copy(update={"instances": only}), local=local))
        return actions

    def _plan_input(self, state) -> WorkerPlanInput:
        now = trio.current_time()
        inp = WorkerPlanInput(self.node_id, state, dict(self.local), params=self.params.known(), now=now)
        waiting = awaiting_params(inp) - self._given_up
        self._waiting = {t: self._waiting.get(t, now) for t in waiting}
        return replace(inp, waiting=dict(self._waiting))

    def _prune_forwarded(self, state) -> None:
        for rid, local in self.local.items():
            gone = {t for t in local.forwarded if t not in state.tasks and t not in local.active}
            if gone:
                self.local[rid] = replace(local, forwarded=local.forwarded - gone)

    def _execute(self, action) -> None:
        if isinstance(action, Spawn):
            self._spawn(action)
        elif isinstance(action, Stop):
            self._stop(action.runner_id, action.reason)
        elif isinstance(action, Step):
            self.local[action.runner_id] = replace(self.local[action.runner_id], requested=action.step)
            # a step is named after the supervisor method that takes it: warmup, pause, resume
            self._call(action.runner_id, getattr(self.supervisors[action.runner_id], action.step))
        elif isinstance(action, Forward):
            self._forward(action)
        elif isinstance(action, FailTask):
            self._given_up.add(action.task_id)
            count("worker.params_missing", f"task {action.task_id}: {action.reason}")
            self._router.send_event(TaskFailed(task_id=action.task_id, error_type=action.error_type,
                                               error_message=action.reason))
        elif isinstance(action, Cancel):
            local = self.local[action.runner_id]
            self.local[action.runner_id] = replace(local, active=local.active - {action.task_id})
            self._record("task_cancel_sent", runnerId=action.runner_id, taskId=action.task_id)
            self._call(action.runner_id, self.supervisors[action.runner_id].cancel, action.task_id)

    def _call(self, rid: RunnerId, fn: Callable[..., Awaitable[object]], *args) -> None:
        """Run one supervisor call in the background; if it raises, that runner fails, not the node."""
        async def guarded() -> None:
            try:
                await fn(*args)
            except Exception as exc:  # noqa: BLE001 - the per-runner boundary
                self._fail_runner(rid, f"{getattr(fn, '__name__', 'call')}", exc)
        self._nursery.start_soon(guarded)

    def _action_failed(self, action, exc: Exception) -> None:
        """The planner's action could not be carried out: fail what it was for, with the reason."""
        what = type(action).__name__.lower()
        if isinstance(action, Spawn):
            self._start_failed(action, exc)
        elif isinstance(action, Forward) and action.runner_id in self.supervisors:
            self._task_failed(action, exc)
        else:
            self._fail_runner(action.runner_id, what, exc)

    def _fail_runner(self, rid: RunnerId, what: str, exc: Exception) -> None:
        reason = f"worker could not {what} runner {rid}: {_describe(exc)}"
        count("worker.action_failed", reason)
        sup = self.supervisors.get(rid)
        local = self.local.get(rid)
        if sup is not None and hasattr(sup, "abort"):
            with isolate("worker.abort"):
                sup.abort(reason)  # reports RunnerFailed(reason) and exits; the crash breaker counts it
                return
        if local is not None:
            self.local[rid] = replace(local, status=RunnerFailed(error_message=reason), stopping=sup is not None)
            if sup is not None:
                self._call(rid, sup.shutdown)
        self._router.send_event(RunnerStatusUpdated(runner_id=rid, runner_status=RunnerFailed(error_message=reason)))
        self._wake.set()

    def _start_failed(self, action: Spawn, exc: Exception) -> None:
        """A runner that could not even be built (a malformed instance, a bad environment): it is
        failed in state with the reason and tried again later, never in a hot loop."""
        rid = action.runner_id
        reason = f"runner {rid} could not start: {_describe(exc)}"
        count("worker.spawn_failed", reason)
        self._record("runner_start_failed", runnerId=rid, instanceId=action.instance_id, error=reason)
        self.supervisors.pop(rid, None)
        self.local[rid] = LocalRunner(rid, action.instance_id, RunnerFailed(error_message=reason))
        self._router.send_event(RunnerStatusUpdated(runner_id=rid, runner_status=RunnerFailed(error_message=reason)))
        now = trio.current_time()
        backoff = min(self._retry_at.get(rid, (0.0, SPAWN_RETRY_S / 2))[1] * 2, SPAWN_RETRY_MAX_S)
        self._retry_at[rid] = (now + backoff, backoff)
        self._crashed(rid, action.instance_id, reason)

    def _retry_failed_starts(self) -> None:
        now = trio.current_time()
        for rid, (at, _) in list(self._retry_at.items()):
            local = self.local.get(rid)
            if local is None or rid in self.supervisors:
                continue
            if now >= at and isinstance(local.status, RunnerFailed) and not local.stopping:
                del self.local[rid]  # the planner spawns it again

    def _task_failed(self, action: Forward, exc: Exception) -> None:
        reason = f"worker could not forward task {action.task_id} to runner {action.runner_id}: {_describe(exc)}"
        count("worker.action_failed", reason)
        local = self.local[action.runner_id]
        self.local[action.runner_id] = replace(local, forwarded=local.forwarded | {action.task_id},
                                               active=local.active - {action.task_id})
        self._router.send_event(TaskFailed(task_id=action.task_id, error_type="runner_failed", error_message=reason))

    def _spawn(self, action: Spawn) -> None:
        if self._breaker(action.runner_id).is_open(trio.current_time()):
            return
        instance = self._router.state.instances[action.instance_id]
        shard = instance.shard_assignments.runner_to_shard[action.runner_id]
        if (problem := self._fits(shard)) is not None:
            self._refuse(action.instance_id, problem)
            return
        sup = self._make_supervisor(action.runner_id, instance, on_status=self._on_status,
                                    on_output=lambda out, rid=action.runner_id: self._on_output(out, rid),
                                    on_traces=self._on_traces)
        self.supervisors[action.runner_id] = sup
        self.local[action.runner_id] = LocalRunner(action.runner_id, action.instance_id, RunnerIdle())
        self._retry_at.pop(action.runner_id, None)
        self._record("runner_spawned", runnerId=action.runner_id, instanceId=action.instance_id, rank=sup.rank)
        self._nursery.start_soon(self._supervise, action.runner_id, sup)

    def _breaker(self, rid: RunnerId):
        from skulk.runner.breaker import CrashBreaker  # the runner package loads on first use

        return self._breakers.setdefault(rid, CrashBreaker())

    def _refuse(self, instance_id: str, reason: str) -> None:
        """Our shard cannot fit here after all: ask the master for a wider placement, once."""
        if instance_id in self._refused or self._send_command is None:
            return
        self._refused.add(instance_id)
        log.warning("refusing shard of %s: %s", instance_id, reason)
        self._record("placement_refused", instanceId=instance_id, reason=reason)
        command = RefuseInstancePlacement(instance_id=instance_id, node_id=self.node_id, reason=reason)
        self._command(command)

    def _command(self, command) -> None:
        async def send() -> None:
            with isolate("worker.command"):
                await self._send_command(command)
        self._nursery.start_soon(send)

    async def _supervise(self, rid: RunnerId, sup: "RunnerSupervisor") -> None:
        try:
            with isolate("worker.supervisor"):  # it has reported the failure; the node goes on
                await sup.run()
        finally:
            if self.supervisors.get(rid) is sup:
                del self.supervisors[rid]
                self._record("runner_exited", runnerId=rid, status=type(sup.status).__name__)
                local = self.local.pop(rid, None)
                if local is not None and not local.stopping:
                    self._on_crash(rid, local, sup)
                self._wake.set()

    def _on_crash(self, rid: RunnerId, local: LocalRunner, sup: "RunnerSupervisor") -> None:
        self._crashed(rid, local.instance_id, getattr(sup.status, "error_message", None))

    def _crashed(self, rid: RunnerId, instance_id: str, error: str | None) -> None:
        """A runner that keeps dying stops its instance, with the reason, instead of looping."""
        if self._breaker(rid).record_failure(trio.current_time()) and self._send_command is not None:
            reason = f"runner {rid} crashed 3 times in 60 s; last error: {error}"
            log.error("%s; stopping instance %s", reason, instance_id)
            self._command(DeleteInstance(instance_id=instance_id, reason=reason))

    def _stop(self, rid: RunnerId, reason: str) -> None:
        log.info("stopping runner %s: %s", rid, reason)
        self._record("runner_stopping", runnerId=rid, reason=reason)
        sup = self.supervisors.get(rid)
        if sup is None:  # a runner that never started (its start failed): nothing runs
            self.local.pop(rid, None)
            self._retry_at.pop(rid, None)
            return
        self.local[rid] = replace(self.local[rid], stopping=True)
        self._call(rid, sup.shutdown)

    def _forward(self, action: Forward) -> None:
        task = self._router.state.tasks[action.task_id]
        local = self.local[action.runner_id]
        self.local[action.runner_id] = replace(
            local, forwarded=local.forwarded | {action.task_id}, active=local.active | {action.task_id})
        sup = self.supervisors[action.runner_id]
        traced = bool(getattr(task, "trace_enabled", False))
        self._record("task_forwarded", runnerId=action.runner_id, taskId=action.task_id, rank=sup.rank)
        self._call(action.runner_id, sup.submit, action.task_id, self.params.get(action.task_id), traced,
                   getattr(task, "priority", DEFAULT_PRIORITY))

    def _on_status(self, rid: RunnerId, status) -> None:
        local = self.local.get(rid)
        self._record("runner_status", runnerId=rid, status=type(status).__name__,
                     error=getattr(status, "error_message", None))
        if local is not None:
            self.local[rid] = replace(local, status=status, requested=None if type(status) is not type(local.status) else local.requested)
        # Ready <-> Running follows every request; the planner reads it locally, the log need not carry it.
        busy_only = local is not None and isinstance(status, _SERVING) and isinstance(local.status, _SERVING)
        if (isinstance(status, RunnerShutdown) or local is not None) and not busy_only:
            self._router.send_event(RunnerStatusUpdated(runner_id=rid, runner_status=status))
        if isinstance(status, RunnerFailed):
            log.warning("runner %s failed: %s", rid, status.error_message)
        self._wake.set()

    def _on_output(self, out: "RunnerOutput", runner_id: RunnerId | None = None) -> None:
        if out.finished:
            self._record_outcome(out, runner_id)
        for rid, local in self.local.items():
            if out.task_id in local.active and out.finished:
                self.local[rid] = replace(local, active=local.active - {out.task_id})
        task = self._router.state.tasks.get(out.task_id)
        owner = next((rid for rid, local in self.local.items() if out.task_id in local.forwarded), None)
        sup = self.supervisors.get(owner) if owner is not None else None
        if task is None or sup is None or sup.rank != 0:
            return  # only rank 0 streams; other ranks just finish
        self._send_output(task, out)
        if out.finished and out.error_code and out.error_code != "cancelled":
            # Success is ended by the owner's FinishCommand; only a failure is a fact of this node's.
            self._router.send_event(TaskFailed(task_id=out.task_id, error_type=out.error_code,
                                               error_message=out.error_message or out.error_code))

    def _record_outcome(self, out: "RunnerOutput", runner: RunnerId | None) -> None:
        cancelled = "cancelled" in (out.error_code, out.finish_reason)
        kind = "task_cancelled" if cancelled else "task_failed" if out.error_code else "task_finished"
        if runner is None:  # a cancelled task may have left `forwarded` already; the supervisor names it
            runner = next((rid for rid, local in self.local.items() if out.task_id in local.forwarded), None)
        self._record(kind, runnerId=runner, taskId=out.task_id, finishReason=out.finish_reason,
                     error=out.error_message or out.error_code)

    def _on_traces(self, rid: RunnerId, traces: "RunnerTraces") -> None:
        """One rank's spans of a traced task go to the master, which merges every rank's."""
        from skulk.runner.outputs import trace_events  # loaded with the runner package anyway

        sup = self.supervisors.get(rid)
        if sup is None:
            return
        events = trace_events(traces, sup.rank, self.node_id, sup.instance.shard_assignments.model_id)
        self._router.send_event(TracesCollected(task_id=traces.task_id, rank=sup.rank, node_id=self.node_id,
                                                traces=events))


def _describe(exc: Exception) -> str:
    return getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"


async def _first_of(*events: trio.Event) -> None:
    async with trio.open_nursery() as nursery:
        for event in events:
            async def wait(e=event):
                await e.wait()
                nursery.cancel_scope.cancel()
            nursery.start_soon(wait)
