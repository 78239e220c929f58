from datetime import datetime, timezone

import pytest

from skulk.errors import NotFound
from skulk.master.sequencer import Sequencer
from skulk.master.serving import (
    auto_place_command, choose_instance, decide_cancel_command, decide_finish_command,
    decide_generate_text, decide_place_instance,
)
from skulk.types import commands as cmd
from skulk.types import events as ev
from skulk.types.ids import Memory
from skulk.types.node import MemoryUsage, NodeNetworkInterfaces, NetworkInterfaceInfo
from skulk.types.runners import RunnerLoaded, RunnerReady
from skulk.types.tasks import TaskStatus, TextGenerationTaskParams
from tests.factories import card, ring_instance

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
PARAMS = TextGenerationTaskParams(model="org/tiny", input=[{"role": "user", "content": "hi"}])


def seq_with(*events):
    s = Sequencer()
    for e in events:
        s.index(e, T0)
    return s


def test_generate_picks_a_ready_instance_with_fewest_tasks_and_404s_unknown_models():
    s = seq_with(ev.InstanceCreated(instance=ring_instance("i1", ["a"])),
                 ev.InstanceCreated(instance=ring_instance("i2", ["b"])),
                 ev.RunnerStatusUpdated(runner_id="i1-r0", runner_status=RunnerReady()),
                 ev.RunnerStatusUpdated(runner_id="i2-r0", runner_status=RunnerLoaded()))
    assert choose_instance(s.state, "org/tiny") == "i1"
    [created] = decide_generate_text(s.state, cmd.GenerateText(task_params=PARAMS, owner_node="a"), task_id="t1")
    assert created.task.instance_id == "i1" and created.task.owner_node == "a"
    with pytest.raises(NotFound, match="No instance found for model org/other"):
        decide_generate_text(s.state, cmd.GenerateText(task_params=PARAMS.model_copy(update={"model": "org/other"})), task_id="t")


def test_cancel_and_finish_map_command_ids_to_tasks():
    s = seq_with(ev.InstanceCreated(instance=ring_instance("i1", ["a"])))
    c = cmd.GenerateText(task_params=PARAMS)
    for e in decide_generate_text(s.state, c, task_id="t1"):
        s.index(e, T0)
    [delete] = decide_cancel_command(s.state, cmd.CancelCommand(cancelled_command_id=c.command_id))
    assert isinstance(delete, ev.TaskDeleted) and delete.task_id == "t1"  # one end signal
    assert decide_cancel_command(s.state, cmd.CancelCommand(cancelled_command_id="nope")) == []
    [finish] = decide_finish_command(s.state, cmd.FinishCommand(finished_command_id=c.command_id))
    assert isinstance(finish, ev.TaskDeleted) and finish.task_id == "t1"


def test_place_instance_and_auto_place_happens_once():
    iface = NodeNetworkInterfaces(ifaces=[NetworkInterfaceInfo(name="lo", ip_address="127.0.0.1")])
    s = seq_with(ev.NodeGatheredInfo(node_id="a", when=T0, info=iface))
    mem = {"a": MemoryUsage(ram_total=Memory.from_gb(16), ram_available=Memory.from_gb(12),
                            swap_total=Memory(in_bytes=0), swap_available=Memory(in_bytes=0))}
    place = auto_place_command(s.state, card())
    assert place is not None
    [created] = decide_place_instance(s.state, place, mem, instance_id="i1", runner_ids=["r1"], port=50001, auto_placed=True)
    s.index(created, T0)
    assert s.state.auto_place_done and "i1" in s.state.instances
    s.index(ev.InstanceDeleted(instance_id="i1"), T0)
    assert auto_place_command(s.state, card()) is None  # deleting it is respected


def test_refusal_deletes_and_asks_for_one_node_wider():
    from skulk.master.serving import decide_refusal
    s = seq_with(ev.InstanceCreated(instance=ring_instance("i1", ["a", "b"])))
    events, wider = decide_refusal(s.state, cmd.RefuseInstancePlacement(instance_id="i1", node_id="b", reason="tight"))
    assert isinstance(events[0], ev.InstanceDeleted) and "node b refused" in events[0].reason
    assert wider.min_nodes == 3
    assert decide_refusal(s.state, cmd.RefuseInstancePlacement(instance_id="gone", node_id="b", reason="x")) == ([], None)


def test_worker_fit_check_uses_tolerance():
    from skulk.worker.fit import shard_fit_problem
    inst = ring_instance("i1", ["a"], model=card(gb=1.0))
    shard = next(iter(inst.shard_assignments.runner_to_shard.values()))
    roomy = MemoryUsage(ram_total=Memory.from_gb(16), ram_available=Memory.from_gb(12),
                        swap_total=Memory(in_bytes=0), swap_available=Memory(in_bytes=0))
    tight = MemoryUsage(ram_total=Memory.from_gb(2), ram_available=Memory.from_gb(0.5),
                        swap_total=Memory(in_bytes=0), swap_available=Memory(in_bytes=0))
    assert shard_fit_problem(shard, roomy) is None
    assert "GB" in shard_fit_problem(shard, tight)
