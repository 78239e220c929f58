"""Instance validation: each malformed shape gets a reason; whatever placement builds passes."""

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from skulk.master.placement import PlacementError, PlacementInfoPendingError
from skulk.master.validate import instance_problems, instance_refusal
from skulk.types.instances import Host, MlxJacclInstance, MlxRingInstance, Sharding
from skulk.types.shards import PipelineShardMetadata, TensorShardMetadata
from skulk.types.state import State
from skulk.types.topology import TopologySnapshot
from tests.master.test_placement_builders import GIB, card, command, lan, memory, place, topology

NODES = ["a", "b", "c"]
STATE = State(topology=TopologySnapshot(nodes=NODES))


def good() -> MlxRingInstance:
    return place(command(card(), min_nodes=3), topology(NODES, lan(NODES)), {n: memory(64 * GIB) for n in NODES})


def shards_of(inst):
    return inst.shard_assignments.runner_to_shard


def with_shards(inst, update):
    """A copy whose shard for each runner in `update` has those fields replaced."""
    shards = {r: s.model_copy(update=update.get(r, {})) for r, s in shards_of(inst).items()}
    sa = inst.shard_assignments.model_copy(update={"runner_to_shard": shards})
    return inst.model_copy(update={"shard_assignments": sa})


def with_assignments(inst, **fields):
    return inst.model_copy(update={"shard_assignments": inst.shard_assignments.model_copy(update=fields)})


def test_a_placed_instance_is_well_formed():
    assert instance_problems(STATE, good()) == [] and instance_refusal(STATE, good()) is None


def test_missing_or_short_ring_hosts_are_refused():
    inst = good()
    missing = inst.model_copy(update={"hosts_by_node": {}})
    assert any("hosts_by_node" in p for p in instance_problems(STATE, missing))
    short = inst.model_copy(update={"hosts_by_node": {n: [Host(ip="0.0.0.0", port=1)] for n in NODES}})
    assert any("has 1 ring host(s), expected 3" in p for p in instance_problems(STATE, short))
    bad_ip = {n: [Host(ip="garbage", port=1)] * 3 for n in NODES}
    assert any("not an IP" in p for p in instance_problems(STATE, inst.model_copy(update={"hosts_by_node": bad_ip})))
    assert instance_problems(STATE, inst.model_copy(update={"ephemeral_port": 65_534}))


def test_unknown_nodes_are_refused():
    two_known = State(topology=TopologySnapshot(nodes=["a", "b"]))
    assert any("unknown node(s): c" in p for p in instance_problems(two_known, good()))


def test_world_size_must_match_the_shards():
    inst = good()
    first = next(iter(shards_of(inst)))
    assert any("world size" in p for p in instance_problems(STATE, with_shards(inst, {first: {"world_size": 2}})))


def test_duplicate_or_missing_ranks_are_refused():
    inst = good()
    r0, r1, _ = list(shards_of(inst))
    assert any("ranks" in p for p in instance_problems(STATE, with_shards(inst, {r1: {"device_rank": 0}})))
    assert any("ranks" in p for p in instance_problems(STATE, with_shards(inst, {r0: {"device_rank": 5}})))


def test_layer_ranges_must_cover_every_layer_contiguously():
    inst = good()
    by_rank = sorted(shards_of(inst), key=lambda r: shards_of(inst)[r].device_rank)
    last = shards_of(inst)[by_rank[-1]]
    gap = with_shards(inst, {by_rank[1]: {"start_layer": shards_of(inst)[by_rank[1]].start_layer + 1}})
    short = with_shards(inst, {by_rank[-1]: {"end_layer": last.end_layer - 1}})
    for broken in (gap, short):
        assert any("layer" in p for p in instance_problems(STATE, broken))
    fields = ("model_card", "device_rank", "world_size", "n_layers")
    tensor = {r: TensorShardMetadata(**{f: getattr(s, f) for f in fields}, start_layer=0, end_layer=8)
              for r, s in shards_of(inst).items()}
    assert any("tensor shards" in p for p in instance_problems(STATE, with_assignments(inst, runner_to_shard=tensor)))


def test_runner_ids_must_be_unique_and_match_the_shards():
    inst = good()
    runners = list(shards_of(inst))
    shared = dict(zip(NODES, [runners[0], runners[0], runners[2]]))
    problems = instance_problems(STATE, with_assignments(inst, node_to_runner=shared))
    assert any("more than one node" in p for p in problems)
    assert any("node_to_runner" in p for p in problems)


def test_jaccl_needs_coordinators_and_a_device_matrix():
    inst = good()
    jaccl = MlxJacclInstance(instance_id="j", shard_assignments=inst.shard_assignments,
                             jaccl_devices=[[None]], jaccl_coordinators={"a": "10.0.0.1:5000"})
    problems = instance_problems(STATE, jaccl)
    assert any("coordinator" in p for p in problems) and any("3x3" in p for p in problems)


def test_an_existing_instance_id_is_refused():
    inst = good()
    state = STATE.model_copy(update={"instances": {inst.instance_id: inst}})
    assert instance_problems(state, inst) == [f"instance {inst.instance_id} already exists"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n_nodes=st.integers(1, 5),
    n_layers=st.integers(1, 96),
    gbs=st.lists(st.integers(1, 128), min_size=5, max_size=5),
    storage_gb=st.integers(1, 200),
    sharding=st.sampled_from([Sharding.Pipeline, Sharding.Tensor]),
    min_nodes=st.integers(1, 5),
)
def test_every_instance_placement_builds_passes_the_validator(n_nodes, n_layers, gbs, storage_gb, sharding, min_nodes):
    nodes = [f"n{i}" for i in range(n_nodes)]
    model = card(n_layers=n_layers, storage=storage_gb * GIB, kv_heads=8, attn_heads=32)
    try:
        inst = place(command(model, sharding=sharding, min_nodes=min_nodes), topology(nodes, lan(nodes)),
                     {n: memory(g * GIB) for n, g in zip(nodes, gbs)})
    except (PlacementError, PlacementInfoPendingError):
        assume(False)
    assert instance_problems(State(topology=TopologySnapshot(nodes=nodes)), inst) == []


def test_other_instance_kinds_get_the_generic_checks():
    from skulk.types import instances

    llama = getattr(instances, "LlamaRpcInstance", None)
    if llama is None:
        return
    shard = PipelineShardMetadata(model_card=card(gguf_file="m.gguf"), device_rank=0, world_size=1,
                                  start_layer=0, end_layer=16, n_layers=16, resolved_backend="llama_cpp")
    sa = instances.ShardAssignments(model_id="org/model", runner_to_shard={"r": shard}, node_to_runner={"a": "r"})
    ok = llama(instance_id="l", shard_assignments=sa, driver_node="a")
    assert instance_problems(STATE, ok) == []
    assert any("unknown node" in p for p in instance_problems(State(), ok))
