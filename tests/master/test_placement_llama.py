"""LlamaRpc placement and engine choice, as pure functions (no event loop, no network)."""

import pytest

from skulk.master.dispatch import AUTO_PLACE_AFTER_S, auto_place
from skulk.master.placement import (
    MULTI_NODE_REFUSAL,
    PlacementError,
    auto_instance_meta,
    card_engines,
    placement_previews,
)
from skulk.master.validate import instance_problems
from skulk.types.instances import InstanceMeta, LlamaRpcInstance, MlxRingInstance, Sharding
from skulk.types.state import State
from tests.master.test_command_table import cluster, ctx
from tests.master.test_placement_builders import GIB, card, command, lan, memory, place, topology

LINUX = ("mlx", "mlx-cpu", "llama_cpp", "llama_cpp-cpu")
MAC = ("mlx", "mlx-metal", "llama_cpp", "llama_cpp-metal")
MLX_ONLY = ("mlx", "mlx-cpu")


def gguf_card(**kw):
    return card(gguf_file="model.Q4_0.gguf", storage=kw.pop("storage", 1 * GIB), **kw)


def mem(*nodes, total=64 * GIB, **overrides):
    return {n: memory(overrides.get(n, total)) for n in nodes}


def test_llama_instance_is_one_whole_shard_on_the_driver_with_most_free_memory():
    nodes = ["a", "b", "c"]
    engines = {"a": LINUX, "b": LINUX, "c": MLX_ONLY}
    inst = place(command(gguf_card(), instance_meta=InstanceMeta.LlamaRpc), topology(nodes, lan(nodes)),
                 mem(*nodes, a=16 * GIB, b=32 * GIB, c=128 * GIB), node_engines=engines)
    assert isinstance(inst, LlamaRpcInstance) and inst.driver_node == "b"  # c has more room but no llama.cpp
    (shard,) = inst.shard_assignments.runner_to_shard.values()
    assert (shard.start_layer, shard.end_layer, shard.world_size, shard.resolved_backend) == (0, 16, 1, "llama_cpp")
    assert inst.shard_assignments.node_to_runner == {"b": "r0"} and inst.context_token_limit
    state = State(topology=topology(nodes, lan(nodes)))
    assert instance_problems(state, inst) == []  # the master's validator accepts what placement builds


@pytest.mark.parametrize("fields, reason", [
    ({"min_nodes": 2}, "llama.cpp's RPC backend"),
    ({"sharding": Sharding.Tensor}, "runs the whole model"),
])
def test_multi_node_and_tensor_llama_placements_are_refused_with_a_reason(fields, reason):
    nodes = ["a", "b"]
    with pytest.raises(PlacementError) as exc:
        place(command(gguf_card(), instance_meta=InstanceMeta.LlamaRpc, **fields), topology(nodes, lan(nodes)),
              mem(*nodes), node_engines={n: LINUX for n in nodes})
    assert reason in exc.value.message
    if "min_nodes" in fields:
        assert exc.value.message == MULTI_NODE_REFUSAL


def test_llama_needs_a_gguf_card_a_node_with_the_engine_and_the_memory():
    with pytest.raises(PlacementError, match="has no GGUF file"):
        place(command(card(), instance_meta=InstanceMeta.LlamaRpc), topology(["a"]), mem("a"))
    with pytest.raises(PlacementError, match="No node advertises the llama_cpp engine"):
        place(command(gguf_card(), instance_meta=InstanceMeta.LlamaRpc), topology(["a"]), mem("a"),
              node_engines={"a": MLX_ONLY})
    with pytest.raises(PlacementError, match="No node with llama.cpp fits"):
        place(command(gguf_card(storage=60 * GIB), instance_meta=InstanceMeta.LlamaRpc), topology(["a"]),
              mem("a", total=8 * GIB), node_engines={"a": LINUX})


def test_a_llama_instance_on_two_nodes_or_without_a_gguf_is_not_well_formed():
    inst = place(command(gguf_card(), instance_meta=InstanceMeta.LlamaRpc), topology(["a"]), mem("a"))
    data = inst.model_dump(mode="json", by_alias=True)["LlamaRpcInstance"]
    with pytest.raises(ValueError, match="driver node"):
        LlamaRpcInstance.model_validate({**data, "driverNode": "b"})
    shard = next(iter(data["shardAssignments"]["runnerToShard"].values()))["PipelineShardMetadata"]
    shard["endLayer"] = 8
    with pytest.raises(ValueError, match="every layer"):
        LlamaRpcInstance.model_validate(data)


def test_mlx_ranks_skip_nodes_that_report_engines_without_mlx():
    nodes = ["a", "b"]
    inst = place(command(gguf_card(), min_nodes=1), topology(nodes, lan(nodes)), mem(*nodes, a=16 * GIB),
                 node_engines={"a": LINUX, "b": ("llama_cpp", "llama_cpp-cpu")})
    assert isinstance(inst, MlxRingInstance) and inst.node_ids() == ["a"]
    gguf_only = gguf_card().model_copy(update={"engines": ["llama_cpp"]})
    with pytest.raises(PlacementError, match="no MLX weights"):
        place(command(gguf_only), topology(["a"]), mem("a"))


def test_previews_list_llama_for_gguf_cards_only():
    nodes = ["a", "b"]
    topo = topology(nodes, lan(nodes))
    found = placement_previews(gguf_card(), topo, mem(*nodes), {}, {}, node_engines={n: LINUX for n in nodes})
    llama = [p for p in found if p.instance_meta is InstanceMeta.LlamaRpc]
    assert [(p.sharding, p.instance is not None) for p in llama] == [(Sharding.Pipeline, True),
                                                                    (Sharding.Pipeline, False)]
    assert llama[1].error == MULTI_NODE_REFUSAL
    plain = placement_previews(card(), topo, mem(*nodes), {}, {})
    assert all(p.instance_meta is not InstanceMeta.LlamaRpc for p in plain)


@pytest.mark.parametrize("engine, nodes, expected", [
    ("auto", {"a": LINUX}, InstanceMeta.LlamaRpc),
    ("auto", {"a": MAC}, InstanceMeta.MlxRing),  # Apple silicon: MLX on Metal
    ("auto", {"a": MAC, "b": LINUX}, InstanceMeta.LlamaRpc),
    ("auto", {"a": MLX_ONLY}, InstanceMeta.MlxRing),  # llama.cpp not installed
    ("mlx", {"a": LINUX}, InstanceMeta.MlxRing),
    ("llama_cpp", {"a": MAC}, InstanceMeta.LlamaRpc),
    ("llama_cpp", {"a": MLX_ONLY}, InstanceMeta.MlxRing),
])
def test_engine_choice_for_the_default_model(engine, nodes, expected):
    assert auto_instance_meta(gguf_card(), engine, nodes) is expected
    assert auto_instance_meta(card(), engine, nodes) is InstanceMeta.MlxRing  # no GGUF: MLX whatever


def test_card_engines_default_from_the_weights():
    assert card_engines(card()) == ["mlx"]
    assert card_engines(gguf_card()) == ["mlx", "llama_cpp"]
    assert card_engines(gguf_card().model_copy(update={"engines": ["llama_cpp"]})) == ["llama_cpp"]


def test_auto_place_serves_the_default_model_with_llama_cpp_on_linux():
    seq = cluster()
    settled = dict(auto_place=True, default_card=gguf_card(), master_age_s=AUTO_PLACE_AFTER_S)
    _, created = auto_place(seq.state, ctx(node_engines={"a": LINUX}, **settled))
    assert isinstance(created.instance, LlamaRpcInstance) and created.auto_placed
    _, created = auto_place(seq.state, ctx(node_engines={"a": LINUX}, engine="mlx", **settled))
    assert isinstance(created.instance, MlxRingInstance)
