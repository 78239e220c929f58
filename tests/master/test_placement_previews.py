"""Previews: every sharding x backend x width, as usable instances or refusals with reasons."""

from skulk.master.placement import placement_previews
from skulk.master.placement.previews import memory_delta_by_node
from skulk.types.instances import InstanceMeta, Sharding
from tests.master.test_placement_builders import GIB, card, lan, memory, topology

NODES = ["a", "b"]


def previews(model, mem=None, **kwargs):
    mem = mem if mem is not None else {node: memory(64 * GIB) for node in NODES}
    return placement_previews(model, topology(NODES, lan(NODES)), mem, {}, {}, **kwargs)


def summary(result):
    return [
        (p.sharding, p.instance_meta, len(p.instance.node_ids()) if p.instance else None,
         p.error is not None)
        for p in result
    ]


def test_empty_topology_has_no_previews():
    assert placement_previews(card(), topology([]), {}, {}, {}) == []


def test_lists_usable_options_and_refused_ones():
    result = previews(card(kv_heads=8))
    # Tensor on one node comes back as the Pipeline ring of one, so it is not repeated
    assert summary(result) == [
        (Sharding.Pipeline, InstanceMeta.MlxRing, 1, False),
        (Sharding.Pipeline, InstanceMeta.MlxRing, 2, False),
        (Sharding.Pipeline, InstanceMeta.MlxJaccl, None, True),
        (Sharding.Tensor, InstanceMeta.MlxRing, 2, False),
        (Sharding.Tensor, InstanceMeta.MlxJaccl, None, True),
    ]
    assert "RDMA" in result[2].error


def test_memory_delta_splits_weights_over_placement_nodes():
    result = previews(card(storage=4 * GIB))
    assert result[0].memory_delta_by_node == {"a": 4 * GIB}
    assert result[1].memory_delta_by_node == {"a": 2 * GIB, "b": 2 * GIB}


def test_memory_delta_remainder_goes_to_first_nodes_by_id():
    model = card(storage=5)
    assert memory_delta_by_node(model, ["b", "c", "a"]) == {"a": 2, "b": 2, "c": 1}


def test_refusals_carry_the_reason():
    result = previews(card(storage=200 * GIB, tensor=False))
    by_pair = {(p.sharding, p.instance_meta): p for p in result}
    assert all(p.instance is None and p.memory_delta_by_node is None for p in result)
    assert len(result) == 4
    pipeline = by_pair[(Sharding.Pipeline, InstanceMeta.MlxRing)]
    tensor = by_pair[(Sharding.Tensor, InstanceMeta.MlxRing)]
    assert "No candidate cycle fits org/model" in pipeline.error
    assert "does not support tensor" in tensor.error


def test_pending_info_is_reported_as_a_refusal():
    result = previews(card(), mem={})
    assert "Memory info has not been gathered yet" in result[0].error


def test_excluded_nodes_are_kept_out_of_every_preview():
    result = previews(card(), excluded_nodes=["a"])
    placed = [p.instance for p in result if p.instance is not None]
    assert placed and all(instance.node_ids() == ["b"] for instance in placed)


def test_serialises_snake_case_with_the_instance_in_wire_form():
    dumped = previews(card())[0].model_dump(mode="json", by_alias=True)
    assert set(dumped) == {
        "model_id", "sharding", "instance_meta", "instance", "memory_delta_by_node", "error", "offload",
    }
    assert dumped["sharding"] == "Pipeline" and dumped["instance_meta"] == "MlxRing"
    wire = dumped["instance"]["MlxRingInstance"]
    assert {"instanceId", "shardAssignments", "hostsByNode", "ephemeralPort"} <= set(wire)
