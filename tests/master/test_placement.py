"""place_instance: pure placement from cluster facts to one new instance."""

import pytest

from skulk.master.memory_estimate import estimate_shard_footprint
from skulk.master.placement import PlacementError, PlacementInfoPendingError, place_instance
from skulk.types.instances import Host, InstanceMeta, MlxRingInstance, Sharding
from skulk.types.shards import PipelineShardMetadata, TensorShardMetadata
from tests.master.test_placement_builders import (
    GIB,
    PORT,
    card,
    command,
    lan,
    layer_split,
    memory,
    place,
    topology,
)


def test_single_node_fit_places_whole_model_on_it():
    instance = place(command(card()), topology(["a"]), {"a": memory(64 * GIB)})

    assert isinstance(instance, MlxRingInstance)
    assert instance.instance_id == "inst"
    assert instance.ephemeral_port == PORT
    assert instance.shard_assignments.model_id == "org/model"
    assert instance.shard_assignments.node_to_runner == {"a": "r0"}
    shard = instance.shard_assignments.runner_to_shard["r0"]
    assert isinstance(shard, PipelineShardMetadata)
    assert (shard.device_rank, shard.world_size) == (0, 1)
    assert (shard.start_layer, shard.end_layer) == (0, 16)
    assert instance.hosts_by_node == {"a": [Host(ip="0.0.0.0", port=PORT)]}


def test_same_inputs_give_the_same_instance():
    topo = topology(["a", "b"], lan(["a", "b"]))
    mem = {"a": memory(64 * GIB), "b": memory(64 * GIB)}
    first = place(command(card(), min_nodes=2), topo, mem)
    second = place(command(card(), min_nodes=2), topo, mem)
    assert first == second


def test_runner_ids_may_come_from_a_callable():
    ids = iter(["x", "y"])
    instance = place(
        command(card(), min_nodes=2),
        topology(["a", "b"], lan(["a", "b"])),
        {"a": memory(64 * GIB), "b": memory(64 * GIB)},
        runner_ids=lambda: next(ids),
    )
    assert instance.shard_assignments.node_to_runner == {"a": "x", "b": "y"}


def test_instance_id_already_in_use_is_a_caller_bug():
    existing = place(command(card()), topology(["a"]), {"a": memory(64 * GIB)})
    with pytest.raises(ValueError):
        place_instance(
            command(card()), topology(["a"]), {"inst": existing}, {"a": memory(64 * GIB)}, {},
            instance_id="inst", runner_ids=["r"], ephemeral_port=PORT,
        )


def test_exact_fit_is_rejected():
    model = card()
    needed = estimate_shard_footprint(model, 1)
    with pytest.raises(PlacementError, match="No candidate cycle fits org/model"):
        place(command(model), topology(["a"]), {"a": memory(100 * GIB, needed)})


def test_one_byte_of_headroom_fits():
    model = card()
    needed = estimate_shard_footprint(model, 1)
    instance = place(command(model), topology(["a"]), {"a": memory(100 * GIB, needed + 1)})
    assert instance.node_ids() == ["a"]


def test_working_set_ceiling_caps_usable_memory():
    # all 6 GiB are free, but only 75% (4.5 GiB) may be wired for the model
    model = card(storage=3 * GIB)  # needs 3.9 + 0.25 = 4.15 GiB
    place(command(model), topology(["a"]), {"a": memory(6 * GIB)})
    with pytest.raises(PlacementError, match=r"75% of total 5\.00 GB"):
        place(command(model), topology(["a"]), {"a": memory(5 * GIB)})


def test_refusal_message_names_node_and_shows_gb_arithmetic():
    model = card(storage=1 * GIB, kv_heads=8)  # KV at 8192 tokens = 0.5 GiB
    mem = {"n1": memory(2 * GIB, int(1.6 * GIB))}
    with pytest.raises(PlacementError) as caught:
        place(command(model), topology(["n1"]), mem, node_names={"n1": "studio"})
    assert str(caught.value) == (
        "No candidate cycle fits org/model (1.00 GB of weights): "
        "cycle [studio (n1)] (Pipeline sharding): "
        "Node studio (n1) has 1.50 GB usable (min(available 1.60 GB, 75% of total 2.00 GB)) "
        "but the shard needs 2.05 GB (1.00 GB weights x 1.30 + 0.50 GB KV cache + 0.25 GB floor)"
    )
    assert caught.value.status == 400


def test_multi_node_refusal_lists_every_short_node_with_the_split():
    model = card(storage=10 * GIB)
    mem = {"a": memory(8 * GIB), "b": memory(8 * GIB)}
    with pytest.raises(PlacementError) as caught:
        place(command(model, min_nodes=2), topology(["a", "b"], lan(["a", "b"])), mem)
    message = str(caught.value)
    assert "cycle [a, b] (Pipeline sharding, layers 8+8)" in message
    assert "Node a has 6.00 GB usable" in message and "Node b has 6.00 GB usable" in message
    assert "needs 6.75 GB (5.00 GB weights x 1.30" in message


def test_heterogeneous_pipeline_splits_layers_by_usable_memory():
    # usable 30:20:11 GiB -> quotas 7.87, 5.25, 2.89 -> largest remainder gives 8, 5, 3
    nodes = ["a", "b", "c"]
    mem = {
        "a": memory(100 * GIB, 30 * GIB),
        "b": memory(100 * GIB, 20 * GIB),
        "c": memory(100 * GIB, 11 * GIB),
    }
    instance = place(command(card(storage=40 * GIB)), topology(nodes, lan(nodes)), mem)
    assert layer_split(instance) == {"a": (0, 8), "b": (8, 13), "c": (13, 16)}
    ranks = {
        node: instance.shard_assignments.runner_to_shard[runner].device_rank
        for node, runner in instance.shard_assignments.node_to_runner.items()
    }
    assert ranks == {"a": 0, "b": 1, "c": 2}


def test_tensor_places_full_layer_range_on_each_rank():
    nodes = ["a", "b"]
    mem = {node: memory(64 * GIB) for node in nodes}
    model = card(kv_heads=8)
    instance = place(
        command(model, sharding=Sharding.Tensor, min_nodes=2), topology(nodes, lan(nodes)), mem
    )
    shards = list(instance.shard_assignments.runner_to_shard.values())
    assert all(isinstance(shard, TensorShardMetadata) for shard in shards)
    assert [(s.device_rank, s.world_size, s.start_layer, s.end_layer) for s in shards] == [
        (0, 2, 0, 16),
        (1, 2, 0, 16),
    ]


def test_tensor_needs_heads_divisible_by_node_count():
    nodes = ["a", "b", "c"]
    mem = {node: memory(64 * GIB) for node in nodes}
    cmd = command(card(kv_heads=8), sharding=Sharding.Tensor, min_nodes=3)
    with pytest.raises(PlacementError, match="No tensor sharding found for model with "
                       "hidden_size=4096, num_key_value_heads=8 across candidate cycles of 3"):
        place(cmd, topology(nodes, lan(nodes)), mem)


def test_tensor_checks_attention_heads_when_known():
    nodes = ["a", "b", "c", "d"]
    mem = {node: memory(64 * GIB) for node in nodes}
    cmd = command(card(kv_heads=8, attn_heads=6), sharding=Sharding.Tensor, min_nodes=4)
    with pytest.raises(PlacementError, match="num_attention_heads=6"):
        place(cmd, topology(nodes, lan(nodes)), mem)


def test_tensor_refused_when_model_does_not_support_it():
    cmd = command(card(tensor=False), sharding=Sharding.Tensor)
    with pytest.raises(PlacementError, match="does not support tensor parallelism: org/model"):
        place(cmd, topology(["a"]), {"a": memory(64 * GIB)})


def test_tensor_on_one_node_is_a_pipeline_of_one():
    cmd = command(card(kv_heads=8), sharding=Sharding.Tensor)
    instance = place(cmd, topology(["a"]), {"a": memory(64 * GIB)})
    (shard,) = instance.shard_assignments.runner_to_shard.values()
    assert isinstance(shard, PipelineShardMetadata)


def test_jaccl_is_refused_clearly():
    cmd = command(card(), instance_meta=InstanceMeta.MlxJaccl)
    with pytest.raises(PlacementError, match="RDMA"):
        place(cmd, topology(["a"]), {"a": memory(64 * GIB)})


def test_most_free_memory_wins_among_equal_sizes():
    mem = {"a": memory(64 * GIB, 20 * GIB), "b": memory(64 * GIB, 40 * GIB)}
    instance = place(command(card()), topology(["a", "b"], lan(["a", "b"])), mem)
    assert instance.node_ids() == ["b"]


def test_ties_break_by_node_id():
    mem = {"b": memory(64 * GIB), "a": memory(64 * GIB)}
    instance = place(command(card()), topology(["b", "a"]), mem)
    assert instance.node_ids() == ["a"]


def test_exclusion_routes_around_node():
    nodes = ["a", "b"]
    mem = {"a": memory(64 * GIB, 40 * GIB), "b": memory(64 * GIB, 20 * GIB)}
    topo = topology(nodes, lan(nodes))
    assert place(command(card(), excluded_nodes=["a"]), topo, mem).node_ids() == ["b"]
    assert place(command(card()), topo, mem, excluded_nodes=["a"]).node_ids() == ["b"]


def test_exclusion_keeps_multi_node_rings_off_the_node():
    nodes = ["a", "b", "c"]
    mem = {node: memory(64 * GIB) for node in nodes}
    cmd = command(card(), min_nodes=2, excluded_nodes=["a"])
    assert sorted(place(cmd, topology(nodes, lan(nodes)), mem).node_ids()) == ["b", "c"]


def test_all_cycles_excluded_is_an_error():
    nodes = ["a", "b"]
    mem = {node: memory(64 * GIB) for node in nodes}
    cmd = command(card(), excluded_nodes=["a", "b"])
    with pytest.raises(PlacementError) as caught:
        place(cmd, topology(nodes, lan(nodes)), mem)
    assert str(caught.value) == (
        "All cycles of at least 1 node(s) touch an excluded node (2 node(s) excluded). "
        "Check the excluded_nodes list — node IDs change when a cluster session restarts."
    )


def test_min_nodes_above_cluster_size_is_a_hard_error():
    nodes = ["a", "b"]
    mem = {node: memory(64 * GIB) for node in nodes}
    with pytest.raises(PlacementError, match="The topology has only 2 node") as caught:
        place(command(card(), min_nodes=3), topology(nodes, lan(nodes)), mem)
    assert not isinstance(caught.value, PlacementInfoPendingError)


def test_unconnected_nodes_are_info_pending():
    mem = {"a": memory(64 * GIB), "b": memory(64 * GIB)}
    with pytest.raises(PlacementInfoPendingError, match="none form a connected cycle") as caught:
        place(command(card(), min_nodes=2), topology(["a", "b"]), mem)
    assert caught.value.status == 503


def test_two_node_placement_needs_edges_both_ways():
    mem = {"a": memory(64 * GIB), "b": memory(64 * GIB)}
    one_way = topology(["a", "b"], [("a", "b", "10.0.0.2")])
    with pytest.raises(PlacementInfoPendingError):
        place(command(card(), min_nodes=2), one_way, mem)
    both = topology(["a", "b"], [("a", "b", "10.0.0.2"), ("b", "a", "10.0.0.1")])
    assert place(command(card(), min_nodes=2), both, mem).node_ids() == ["a", "b"]


def test_missing_memory_info_is_pending_when_nothing_else_fits():
    with pytest.raises(PlacementInfoPendingError, match=r"Memory info .* \[b\]"):
        place(command(card()), topology(["b"]), {})


def test_missing_memory_on_one_node_does_not_block_another_that_fits():
    topo = topology(["a", "b"], lan(["a", "b"]))
    instance = place(command(card()), topo, {"a": memory(64 * GIB)})
    assert instance.node_ids() == ["a"]


def test_missing_memory_is_pending_even_if_known_nodes_are_too_small():
    mem = {"a": memory(4 * GIB)}
    with pytest.raises(PlacementInfoPendingError, match=r"\[b\]"):
        place(command(card()), topology(["a", "b"], lan(["a", "b"])), mem)


def test_smallest_fitting_cycle_wins():
    nodes = ["a", "b", "c"]
    mem = {node: memory(64 * GIB) for node in nodes}
    topo = topology(nodes, lan(nodes))
    assert len(place(command(card()), topo, mem).node_ids()) == 1
    assert len(place(command(card(), min_nodes=2), topo, mem).node_ids()) == 2


def test_grows_to_a_bigger_cycle_only_when_smaller_ones_do_not_fit():
    # 8 GiB of weights needs ~10.65 GiB; each node can wire 7.5 GiB; the two freest pair up
    nodes = ["a", "b", "c"]
    mem = {"a": memory(10 * GIB, 9 * GIB), "b": memory(10 * GIB), "c": memory(10 * GIB)}
    instance = place(command(card(storage=8 * GIB)), topology(nodes, lan(nodes)), mem)
    assert instance.node_ids() == ["b", "c"]


def test_pipeline_needs_a_layer_per_rank():
    nodes = ["a", "b", "c"]
    mem = {node: memory(64 * GIB) for node in nodes}
    with pytest.raises(PlacementError, match="cannot split 2 layer"):
        place(command(card(n_layers=2), min_nodes=3), topology(nodes, lan(nodes)), mem)


def test_context_limit_is_stamped_from_kv_budget():
    # 0.75 x 16 GiB - 1.3 GiB weights - 256 MiB, over 64 KiB of KV per token
    model = card(storage=GIB, kv_heads=8)
    instance = place(command(model), topology(["a"]), {"a": memory(16 * GIB)})
    assert instance.context_token_limit == 171212


def test_context_limit_is_capped_by_card_context_length():
    model = card(storage=GIB, kv_heads=8, context_length=32768)
    instance = place(command(model), topology(["a"]), {"a": memory(16 * GIB)})
    assert instance.context_token_limit == 32768


def test_context_limit_falls_back_to_card_without_kv_heads():
    instance = place(command(card(context_length=4096)), topology(["a"]), {"a": memory(16 * GIB)})
    assert instance.context_token_limit == 4096
    instance = place(command(card()), topology(["a"]), {"a": memory(16 * GIB)})
    assert instance.context_token_limit is None
