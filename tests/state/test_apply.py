from datetime import datetime, timedelta, timezone

import pytest

from skulk.state.apply import OutOfOrderEvent, apply
from skulk.state.seed import seed_state_for_new_session
from skulk.types import events as ev
from skulk.types.downloads import DownloadCompleted, DownloadOngoing
from skulk.types.node import NetworkInterfaceInfo, NodeNetworkInterfaces
from skulk.types.runners import RunnerReady, RunnerShutdown
from skulk.types.state import State
from skulk.types.tasks import TaskStatus, TextGeneration, TextGenerationTaskParams
from skulk.types.topology import Connection, SocketConnection
from tests.factories import ring_instance

NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)


def fold(*events, state=None):
    state = state or State()
    for e in events:
        state = apply(state, ev.IndexedEvent(idx=state.last_event_applied_idx + 1, event=e))
    return state


def task(tid, instance_id):
    params = TextGenerationTaskParams(model="org/tiny", input=[{"role": "user", "content": "hi"}])
    return TextGeneration(task_id=tid, instance_id=instance_id, command_id=f"c-{tid}", task_params=params)


def test_indices_must_be_contiguous():
    s = fold(ev.TestEvent())
    assert s.last_event_applied_idx == 0
    with pytest.raises(OutOfOrderEvent):
        apply(s, ev.IndexedEvent(idx=5, event=ev.TestEvent()))


def test_apply_never_mutates_the_input():
    s0 = State()
    s1 = fold(ev.InstanceCreated(instance=ring_instance("i1", ["a"])), state=s0)
    assert s0.instances == {} and "i1" in s1.instances


def test_instance_deleted_removes_its_runners_and_no_resurrection():
    s = fold(ev.InstanceCreated(instance=ring_instance("i1", ["a", "b"])),
             ev.RunnerStatusUpdated(runner_id="i1-r0", runner_status=RunnerReady()))
    assert "i1-r0" in s.runners
    s = fold(ev.InstanceDeleted(instance_id="i1"),
             ev.RunnerStatusUpdated(runner_id="i1-r1", runner_status=RunnerReady()), state=s)
    assert s.instances == {} and s.runners == {}


def test_unknown_instance_delete_is_a_noop_and_shutdown_removes_runner():
    s = fold(ev.InstanceCreated(instance=ring_instance("i1", ["a"])),
             ev.RunnerStatusUpdated(runner_id="i1-r0", runner_status=RunnerReady()),
             ev.InstanceDeleted(instance_id="nope"))
    assert "i1" in s.instances
    s = fold(ev.RunnerStatusUpdated(runner_id="i1-r0", runner_status=RunnerShutdown()), state=s)
    assert s.runners == {}


def test_node_timed_out_removes_instances_runners_tasks_and_node_maps():
    info = NodeNetworkInterfaces(ifaces=[NetworkInterfaceInfo(name="lo", ip_address="127.0.0.1")])
    s = fold(ev.NodeGatheredInfo(node_id="a", when=NOW, info=info),
             ev.NodeGatheredInfo(node_id="b", when=NOW, info=info),
             ev.InstanceCreated(instance=ring_instance("i1", ["a", "b"])),
             ev.InstanceCreated(instance=ring_instance("i2", ["b"])),
             ev.TaskCreated(task_id="t1", task=task("t1", "i1")),
             ev.NodeTimedOut(node_id="a"))
    assert set(s.instances) == {"i2"} and s.tasks == {}
    assert s.topology.nodes == ["b"] and "a" not in s.last_seen and "a" not in s.node_network


def test_task_lifecycle_and_failure_fields():
    s = fold(ev.InstanceCreated(instance=ring_instance("i1", ["a"])),
             ev.TaskCreated(task_id="t1", task=task("t1", "i1")),
             ev.TaskFailed(task_id="t1", error_type="instance_lost", error_message="gone"))
    t = s.tasks["t1"]
    assert t.task_status == TaskStatus.Failed and t.error_message == "gone"
    s = fold(ev.TaskStatusUpdated(task_id="t1", task_status=TaskStatus.Running), state=s)
    assert s.tasks["t1"].error_message is None
    s = fold(ev.TaskDeleted(task_id="t1"), ev.TaskStatusUpdated(task_id="t1", task_status=TaskStatus.Running), state=s)
    assert s.tasks == {}


def test_download_progress_upserts_per_node_and_model():
    s = fold(ev.NodeDownloadProgress(download_progress=DownloadOngoing(node_id="a", model_id="m", downloaded_bytes=1)),
             ev.NodeDownloadProgress(download_progress=DownloadCompleted(node_id="a", model_id="m")),
             ev.NodeDownloadProgress(download_progress=DownloadOngoing(node_id="a", model_id="n")))
    assert [type(d).__name__ for d in s.downloads["a"]] == ["DownloadCompleted", "DownloadOngoing"]


def test_edges_dedupe_and_delete():
    conn = Connection(source="a", sink="b", edge=SocketConnection(sink_multiaddr="/ip4/127.0.0.1/tcp/1"))
    s = fold(ev.TopologyEdgeCreated(conn=conn), ev.TopologyEdgeCreated(conn=conn))
    assert len(s.topology.connections["a"]["b"]) == 1
    s = fold(ev.TopologyEdgeDeleted(conn=conn), state=s)
    assert s.topology.connections == {}


def test_snapshot_replaces_state_wholesale():
    s = fold(ev.TracingStateChanged(enabled=True))
    other = fold(ev.InstanceCreated(instance=ring_instance("i9", ["z"])))
    s = apply(s, ev.IndexedEvent(idx=7, event=ev.StateSnapshotHydrated(state=other)))
    assert s.last_event_applied_idx == 7 and "i9" in s.instances and not s.tracing_enabled


def test_seed_carries_durable_facts_and_drops_live_ones():
    info = NodeNetworkInterfaces(ifaces=[NetworkInterfaceInfo(name="lo", ip_address="127.0.0.1")])
    s = fold(ev.NodeGatheredInfo(node_id="a", when=NOW, info=info),
             ev.InstanceCreated(instance=ring_instance("i1", ["a", "c"])),
             ev.RunnerStatusUpdated(runner_id="i1-r0", runner_status=RunnerReady()),
             ev.TaskCreated(task_id="t1", task=task("t1", "i1")),
             ev.NodeDownloadProgress(download_progress=DownloadCompleted(node_id="a", model_id="m")),
             ev.NodeDownloadProgress(download_progress=DownloadOngoing(node_id="a", model_id="n")),
             ev.TracingStateChanged(enabled=True))
    later = NOW + timedelta(minutes=5)
    seed = seed_state_for_new_session(s, later)
    assert set(seed.instances) == {"i1"} and seed.runners == {} and seed.tasks == {}
    assert seed.topology.nodes == [] and seed.last_event_applied_idx == -1
    assert [d.model_id for d in seed.downloads["a"]] == ["m"] and seed.tracing_enabled
    assert seed.last_seen == {"a": later, "c": later}


def test_state_json_round_trip_rejects_unknown_fields():
    s = fold(ev.InstanceCreated(instance=ring_instance("i1", ["a"])),
             ev.NodeGatheredInfo(node_id="a", when=NOW, info=NodeNetworkInterfaces(ifaces=[])))
    text = s.model_dump_json(by_alias=True)
    assert State.model_validate_json(text) == s
    assert '"lastEventAppliedIdx"' in text and '"MlxRingInstance"' in text
    with pytest.raises(ValueError):
        State.model_validate({"bogus": 1})
