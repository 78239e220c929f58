"""The warm cache as pure decisions: idle -> paused, busy guard, pinned, LRU drop at the RAM cap, wake."""

from datetime import datetime, timedelta, timezone

from skulk.master import warm_cache as wc
from skulk.state.apply import apply_event
from skulk.types import events as ev
from skulk.types.deployments import Deployment, DeploymentStatus
from skulk.types.state import State
from skulk.types.tasks import TaskStatus, TextGeneration, TextGenerationTaskParams
from tests.factories import card, ring_instance

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
S = DeploymentStatus


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def cluster(*deps: tuple[str, list[str], float], warm: dict | None = None, **fields) -> State:
    """deps: (deployment id, nodes of its one instance, GB of weights); every one ready."""
    deployments, instances = {}, {}
    for dep_id, nodes, gb in deps:
        model = card(model_id=f"org/{dep_id}", gb=gb)
        deployments[dep_id] = Deployment(deployment_id=dep_id, model_id=model.model_id, model_card=model,
                                         **{"status": S.ready, **fields.get(dep_id, {})})
        inst = ring_instance(f"i-{dep_id}", nodes, model).model_copy(update={"deployment_id": dep_id})
        instances[inst.instance_id] = inst
    return State(deployments=deployments, instances=instances,
                 cluster_config={"warm_cache": warm} if warm is not None else None)


def task(state: State, dep_id: str, status=TaskStatus.Running) -> State:
    params = TextGenerationTaskParams(model=f"org/{dep_id}", input=[{"role": "user", "content": "hi"}])
    t = TextGeneration(task_id=f"t-{dep_id}", instance_id=f"i-{dep_id}", command_id="c", task_params=params,
                       task_status=status)
    return state.model_copy(update={"tasks": {**state.tasks, t.task_id: t}})


def paused_ids(events) -> list[str]:
    return [e.deployment_id for e in events if isinstance(e, ev.DeploymentStatusChanged) and e.status == S.paused]


def test_default_never_pauses_and_a_keep_alive_pauses_once_idle_past_it():
    state = cluster(("a", ["n1"], 0.1))
    assert wc.warm_events(state, at(10_000), {}, T0) == []  # keep_alive_seconds null: never
    state = cluster(("a", ["n1"], 0.1), warm={"keep_alive_seconds": 60, "busy_guard_seconds": 5})
    assert paused_ids(wc.warm_events(state, at(59), {"a": T0}, T0)) == []
    assert paused_ids(wc.warm_events(state, at(61), {"a": T0}, T0)) == ["a"]
    assert paused_ids(wc.warm_events(state, at(61), {"a": at(30)}, T0)) == []  # used since
    # a new master counts from its own start, whatever it did not see
    assert paused_ids(wc.warm_events(state, at(61), {}, at(30))) == []


def test_deployment_keep_alive_wins_and_zero_means_never():
    warm = {"keep_alive_seconds": 3600, "busy_guard_seconds": 0}
    state = cluster(("a", ["n1"], 0.1), ("b", ["n1"], 0.1), warm=warm,
                    a={"keep_alive_seconds": 10}, b={"keep_alive_seconds": 0})
    assert paused_ids(wc.warm_events(state, at(11), {}, T0)) == ["a"]


def test_busy_guard_in_flight_request_and_pinned_never_pause():
    warm = {"keep_alive_seconds": 10, "busy_guard_seconds": 120}
    state = cluster(("a", ["n1"], 0.1), ("p", ["n1"], 0.1), warm=warm, p={"pinned": True})
    assert paused_ids(wc.warm_events(state, at(100), {}, T0)) == []  # inside the busy guard
    assert paused_ids(wc.warm_events(state, at(121), {}, T0)) == ["a"]  # pinned p stays
    busy = task(state, "a", TaskStatus.Pending)
    assert paused_ids(wc.warm_events(busy, at(10_000), {}, T0)) == []
    assert paused_ids(wc.warm_events(state, at(10_000 * 100), {}, T0)) == ["a"]


def test_only_ready_or_degraded_deployments_pause():
    warm = {"keep_alive_seconds": 1, "busy_guard_seconds": 0}
    for status in (S.starting, S.pending, S.failed, S.paused, S.stopping):
        state = cluster(("a", ["n1"], 0.1), warm=warm, a={"status": status})
        assert paused_ids(wc.warm_events(state, at(100), {}, T0)) == [], status


def test_over_the_ram_cap_the_least_recently_used_paused_one_goes_cold():
    warm = {"keep_alive_seconds": 10, "busy_guard_seconds": 0, "max_ram_gb": 2.5}
    state = cluster(("old", ["n1"], 1.0), ("mid", ["n1"], 1.0), ("new", ["n1"], 1.0), ("far", ["n2"], 2.0),
                    warm=warm, old={"status": S.paused}, mid={"status": S.paused}, far={"status": S.paused})
    used = {"old": at(1), "mid": at(2), "new": at(3), "far": at(0)}
    events = wc.warm_events(state, at(100), used, T0)
    assert paused_ids(events) == ["new"]
    dropped = [e.instance_id for e in events if isinstance(e, ev.InstanceDeleted)]
    assert dropped == ["i-old"]  # n1 holds 3 GB over a 2.5 GB cap; n2's 2 GB fits
    assert all(e.reason == wc.DROPPED for e in events if isinstance(e, ev.InstanceDeleted))
    under = cluster(("old", ["n1"], 1.0), warm={**warm, "max_ram_gb": 1.5}, old={"status": S.paused})
    assert wc.warm_events(under, at(100), used, T0) == []


def test_a_task_on_a_paused_deployment_wakes_it_once_and_counts_as_use():
    state = cluster(("a", ["n1"], 0.1), ("b", ["n1"], 0.1), a={"status": S.paused})
    created = [ev.TaskCreated(task_id=t.task_id, task=t) for t in
               (task(state, "a").tasks["t-a"], task(state, "a").tasks["t-a"], task(state, "b").tasks["t-b"])]
    out = wc.with_wakes(state, created)
    wakes = [e for e in out if isinstance(e, ev.DeploymentStatusChanged)]
    assert [(e.deployment_id, e.status, e.reason) for e in wakes] == [("a", S.pending, wc.WOKEN)]
    tracker = wc.UseTracker(since=T0)
    tracker.observe(state, [ev.IndexedEvent(idx=i, event=e) for i, e in enumerate(out)], at(5))
    assert tracker.last_used == {"a": at(5), "b": at(5)}
    after = apply_event(state, wakes[0])
    assert after.deployments["a"].status == S.pending and wc.paused_deployment_for(state, "org/a") == "a"
    assert wc.paused_deployment_for(after, "org/a") is None


def test_until_the_cluster_config_names_it_the_masters_own_settings_apply():
    state = cluster(("a", ["n1"], 0.1))
    local = {"warm_cache": {"keep_alive_seconds": 5, "busy_guard_seconds": 0}}
    assert paused_ids(wc.warm_events(state, at(6), {}, T0, local)) == ["a"]
    named = cluster(("a", ["n1"], 0.1), warm={"keep_alive_seconds": 100, "busy_guard_seconds": 0})
    assert paused_ids(wc.warm_events(named, at(6), {}, T0, local)) == []  # the cluster config wins
