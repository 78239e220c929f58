"""Maintenance as pure decisions: cordon/drain/uncordon, and placement skipping such nodes."""

import pytest

from skulk.errors import NotFound
from skulk.master.placement import (
    PlacementError,
    no_worker_nodes,
    placement_previews,
    unavailable_nodes,
)
from skulk.types import commands as cmd
from skulk.types.instances import InstanceMeta
from skulk.types.node import SystemPerformanceProfile
from tests.factories import card as tiny_card
from tests.master.test_command_table import cluster, ctx, run
from tests.master.test_placement_builders import GIB, card, command, lan, memory, place, topology


def mem(*nodes, total=64 * GIB):
    return {n: memory(total) for n in nodes}


def test_cordon_drain_uncordon_go_through_state_and_unknown_nodes_are_404():
    seq = cluster(("a", "b"))
    run(seq, cmd.CordonNode(node_id="a"), ctx(("a", "b")))
    assert seq.state.node_maintenance == {"a": "cordoned"}
    assert run(seq, cmd.CordonNode(node_id="a"), ctx(("a", "b"))) == []  # repeating changes nothing
    run(seq, cmd.CordonNode(node_id="a", drain=True), ctx(("a", "b")))
    assert seq.state.node_maintenance == {"a": "draining"}
    run(seq, cmd.UncordonNode(node_id="a"), ctx(("a", "b")))
    assert seq.state.node_maintenance == {}
    with pytest.raises(NotFound):
        run(seq, cmd.CordonNode(node_id="ghost"), ctx(("a", "b")))
    with pytest.raises(NotFound):
        run(seq, cmd.UncordonNode(node_id="ghost"), ctx(("a", "b")))


def test_placement_skips_a_cordoned_node_and_a_refusal_names_it():
    nodes = ["a", "b"]
    topo = topology(nodes, lan(nodes))
    blocked = unavailable_nodes({"a": "cordoned"})
    inst = place(command(card()), topo, {"a": memory(128 * GIB), "b": memory(64 * GIB)}, unavailable=blocked)
    assert inst.node_ids() == ["b"]  # a had more free memory: without the cordon it would win
    with pytest.raises(PlacementError, match="node a is cordoned"):
        place(command(card(), min_nodes=2), topo, mem(*nodes), unavailable=blocked)
    with pytest.raises(PlacementError, match=r"node b is cordoned \(draining\)"):
        place(command(card()), topology(["b"]), mem("b"), unavailable=unavailable_nodes({"b": "draining"}))


def test_no_worker_nodes_come_from_heartbeats_and_never_get_shards():
    systems = {"a": SystemPerformanceProfile(has_worker=False), "b": SystemPerformanceProfile()}
    assert no_worker_nodes(systems) == {"a"}
    blocked = unavailable_nodes({}, no_worker_nodes(systems))
    nodes = ["a", "b"]
    inst = place(command(card()), topology(nodes, lan(nodes)), {"a": memory(128 * GIB), "b": memory(64 * GIB)},
                 unavailable=blocked)
    assert inst.node_ids() == ["b"]
    with pytest.raises(PlacementError, match=r"node a runs without a worker \(--no-worker\)"):
        place(command(card()), topology(["a"]), mem("a"), unavailable=blocked)


def test_llama_driver_is_never_a_cordoned_node():
    gguf = card(gguf_file="m.gguf", storage=1 * GIB)
    nodes = ["a", "b"]
    blocked = unavailable_nodes({"b": "cordoned"})
    inst = place(command(gguf, instance_meta=InstanceMeta.LlamaRpc), topology(nodes, lan(nodes)),
                 {"a": memory(32 * GIB), "b": memory(128 * GIB)}, unavailable=blocked)
    assert inst.node_ids() == ["a"]
    with pytest.raises(PlacementError, match="node b is cordoned"):
        place(command(gguf, instance_meta=InstanceMeta.LlamaRpc), topology(["b"]), mem("b"), unavailable=blocked)


def test_previews_list_the_cordon_as_the_reason():
    found = placement_previews(card(), topology(["a"]), mem("a"), {}, {},
                               unavailable=unavailable_nodes({"a": "cordoned"}))
    assert found and all(p.instance is None for p in found)
    assert all("node a is cordoned" in p.error for p in found)


def test_the_master_places_around_cordoned_and_no_worker_nodes():
    nodes = ("a", "b", "c")
    seq = cluster(nodes)
    run(seq, cmd.CordonNode(node_id="a"), ctx(nodes))
    context = ctx(nodes, no_worker=frozenset({"b"}))
    for _ in range(3):
        [created] = run(seq, cmd.PlaceInstance(model_card=tiny_card()), context)
        assert created.instance.node_ids() == ["c"]
    run(seq, cmd.CordonNode(node_id="c", drain=True), ctx(nodes))
    with pytest.raises(PlacementError) as refused:
        run(seq, cmd.PlaceInstance(model_card=tiny_card()), context)
    message = refused.value.message
    assert "node a is cordoned" in message and "node c is cordoned (draining)" in message
    assert "node b runs without a worker" in message


def test_a_hand_written_instance_on_a_cordoned_node_is_refused():
    from skulk.errors import BadRequest
    from tests.factories import ring_instance

    nodes = ("a", "b", "c")
    seq = cluster(nodes)
    run(seq, cmd.CordonNode(node_id="a"), ctx(nodes))
    context = ctx(nodes, no_worker=frozenset({"b"}))
    run(seq, cmd.CordonNode(node_id="b", drain=True), ctx(nodes))
    for node, why in (("a", "node a is cordoned"), ("b", "node b is cordoned (draining)")):
        with pytest.raises(BadRequest) as refused:
            run(seq, cmd.CreateInstance(instance=ring_instance(f"i-{node}", [node], tiny_card())), context)
        assert why in refused.value.message and "no new shards go there" in refused.value.message
    # an operator may name a --no-worker node by hand (tests do, to hold instances without runners)
    [created] = run(seq, cmd.CreateInstance(instance=ring_instance("i-c", ["c"], tiny_card())),
                    ctx(nodes, no_worker=frozenset({"c"})))
    assert created.instance.node_ids() == ["c"]
