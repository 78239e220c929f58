"""The master's one command table, driven as plain function calls (no event loop)."""

from datetime import datetime, timezone
from itertools import count

import pytest

from skulk.errors import BadRequest, NotFound
from skulk.master.dispatch import AUTO_PLACE_AFTER_S, DECIDERS, DecideContext, auto_place, decide
from skulk.master.sequencer import Sequencer
from skulk.types import commands as cmd
from skulk.types import events as ev
from skulk.types.node import NetworkInterfaceInfo, NodeNetworkInterfaces
from skulk.types.runners import RunnerReady
from skulk.types.topology import Connection, SocketConnection
from skulk.types.tasks import TaskStatus, TextGenerationTaskParams
from tests.factories import card, ring_instance
from tests.master.test_placement_builders import GIB, memory

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
PARAMS = TextGenerationTaskParams(model="org/tiny", input=[{"role": "user", "content": "hi"}])


def ctx(nodes=("a",), **fields) -> DecideContext:
    ids = count()
    base = dict(node_memory={n: memory(64 * GIB) for n in nodes}, node_names={n: f"name-{n}" for n in nodes},
                new_id=lambda: f"id{next(ids)}", ring_port=61_008, now=T0)
    return DecideContext(**{**base, **fields})


def cluster(nodes=("a",)) -> Sequencer:
    seq = Sequencer()
    for i, n in enumerate(nodes):
        iface = NodeNetworkInterfaces(ifaces=[NetworkInterfaceInfo(name="lo", ip_address=f"127.0.0.{i + 1}")])
        seq.index(ev.NodeGatheredInfo(node_id=n, when=T0, info=iface), T0)
    return seq


def run(seq: Sequencer, command, context: DecideContext) -> list:
    events = decide(seq.state, command, context)
    for e in events:
        seq.index(e, T0)
    return events


def test_every_command_type_has_one_decider():
    assert set(DECIDERS) == set(cmd._Command.__subclasses__())


def test_place_instance_uses_the_context_ids_port_and_names():
    seq = cluster()
    [created] = run(seq, cmd.PlaceInstance(model_card=card()), ctx())
    inst = created.instance
    assert inst.instance_id == "id1" and inst.shard_assignments.node_to_runner == {"a": "id0"}
    assert inst.ephemeral_port == 61_008 and not created.auto_placed


def test_serving_commands_create_tasks_owned_by_the_sender_and_cancel_them():
    seq = cluster()
    seq.index(ev.InstanceCreated(instance=ring_instance("i1", ["a"])), T0)
    seq.index(ev.RunnerStatusUpdated(runner_id="i1-r0", runner_status=RunnerReady()), T0)  # admission: ready only
    [created] = run(seq, cmd.GenerateText(command_id="g", task_params=PARAMS, owner_node="forged"), ctx(sender="a"))
    assert created.task_id == "id0" and created.task.owner_node == "a" and created.task.instance_id == "i1"
    embed = cmd.EmbedText(task_params={"model": "org/tiny", "input": ["x"]})
    assert decide(seq.state, embed, ctx(sender="b"))[0].task.owner_node == "b"
    cancelled = run(seq, cmd.CancelCommand(cancelled_command_id="g"), ctx())
    assert [type(e) for e in cancelled] == [ev.TaskDeleted]  # one end signal
    assert "id0" not in seq.state.tasks
    with pytest.raises(NotFound):
        decide(seq.state, cmd.GenerateText(task_params=PARAMS.model_copy(update={"model": "org/none"})), ctx())


def test_refusal_widens_once_and_only_at_the_refusing_nodes_word():
    seq = cluster(("a", "b"))
    seq.index(ev.InstanceCreated(instance=ring_instance("i1", ["a"])), T0)
    refusal = cmd.RefuseInstancePlacement(instance_id="i1", node_id="a", reason="tight")
    with pytest.raises(BadRequest):
        decide(seq.state, refusal, ctx(("a", "b"), sender="b"))  # b runs nothing of i1
    assert decide(seq.state, refusal, ctx(("a", "b"), sender="a", refused=frozenset({"i1"}))) == []
    events = decide(seq.state, refusal, ctx(("a", "b"), sender="a"))
    assert isinstance(events[0], ev.InstanceDeleted) and "node a refused its shard: tight" in events[0].reason
    # no edges between a and b yet: nothing wider fits, the deletion keeps the reason
    assert len(events) == 1
    for src, sink, ip in (("a", "b", "127.0.0.2"), ("b", "a", "127.0.0.1")):
        conn = Connection(source=src, sink=sink, edge=SocketConnection(sink_multiaddr=f"/ip4/{ip}/tcp/1"))
        seq.index(ev.TopologyEdgeCreated(conn=conn), T0)
    deleted, wider = decide(seq.state, refusal, ctx(("a", "b"), sender="a"))
    assert isinstance(deleted, ev.InstanceDeleted)
    assert set(wider.instance.node_ids()) == {"a", "b"} and wider.instance.ephemeral_port == 61_008


def test_create_instance_is_validated_and_delete_needs_a_known_instance():
    seq = cluster(("a",))
    with pytest.raises(BadRequest, match="unknown node"):
        decide(seq.state, cmd.CreateInstance(instance=ring_instance("i1", ["a", "zz"])), ctx())
    [created] = run(seq, cmd.CreateInstance(instance=ring_instance("i1", ["a"])), ctx())
    assert "i1" in seq.state.instances
    with pytest.raises(BadRequest, match="already exists"):
        decide(seq.state, cmd.CreateInstance(instance=ring_instance("i1", ["a"])), ctx())
    with pytest.raises(NotFound):
        decide(seq.state, cmd.DeleteInstance(instance_id="nope"), ctx())


def test_purge_and_config_and_tracing_become_master_events():
    state = cluster().state
    [purge] = decide(state, cmd.PurgeStaging(model_id="org/tiny"), ctx())
    assert isinstance(purge, ev.StagingPurgeRequested) and purge.model_id == "org/tiny" and purge.requested_at == T0
    [config] = decide(state, cmd.SetClusterConfig(config={"hf_token": "secret", "logging": {"enabled": True}}), ctx())
    assert config.config == {"logging": {"enabled": True}}
    assert decide(state, cmd.SetTracingEnabled(enabled=True), ctx())[0].enabled
    with pytest.raises(BadRequest, match="byte limit"):
        decide(state, cmd.SetClusterConfig(config={"logging": {"x": "y" * 300_000}}), ctx())


def test_auto_place_waits_for_the_cluster_to_settle_and_happens_once():
    seq = cluster()
    settled = ctx(auto_place=True, default_card=card(), master_age_s=AUTO_PLACE_AFTER_S)
    assert auto_place(seq.state, ctx(auto_place=True, default_card=card(), master_age_s=1.0)) == []
    assert auto_place(seq.state, ctx(default_card=card(), master_age_s=60)) == []  # switched off
    assert auto_place(seq.state, ctx(auto_place=True, default_card=card(), master_age_s=60, node_memory={})) == []
    deployment, created = auto_place(seq.state, settled)  # a deployment, so it survives a cold restart
    assert created.auto_placed and deployment.deployment.auto_placed
    assert created.instance.deployment_id == deployment.deployment.deployment_id
    seq.index(deployment, T0)
    seq.index(created, T0)
    assert auto_place(seq.state, settled) == []
    seq.index(ev.InstanceDeleted(instance_id=created.instance.instance_id), T0)
    seq.index(ev.DeploymentDeleted(deployment_id=deployment.deployment.deployment_id), T0)
    assert auto_place(seq.state, settled) == []  # deleting it is respected


def test_auto_place_that_does_not_fit_waits_quietly():
    seq = cluster()
    big = card(gb=1000)
    assert auto_place(seq.state, ctx(auto_place=True, default_card=big, master_age_s=60)) == []
