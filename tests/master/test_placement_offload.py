"""GPU layer split of llama.cpp placements: the arithmetic, the preview, the instance, the runner launch."""

from types import SimpleNamespace

from hypothesis import given, settings
from hypothesis import strategies as st

from skulk.engine.llama_load import gpu_layers
from skulk.master.dispatch import decide
from skulk.master.placement import placement_previews
from skulk.master.placement.offload import GPU_RESERVE_BYTES, layer_bytes, layers_that_fit, plan_offload
from skulk.runner.launch import MOCK_DEVICE_ENV, device_launch
from skulk.types import commands as cmd
from skulk.types.devices import DeviceInfo
from skulk.types.instances import InstanceMeta, LlamaRpcInstance
from tests.master.test_command_table import cluster, ctx
from tests.master.test_placement_builders import GIB, MIB, card, command, lan, place, topology
from tests.master.test_placement_llama import LINUX, gguf_card, mem


def gpu(index, gb, used_gb=0.0, *, mock=True, vendor="nvidia", name=None):
    return DeviceInfo(index=index, vendor=vendor, name=name or f"Mock GPU {index}", mock=mock,
                      memory_total_bytes=int(gb * GIB), memory_used_bytes=int(used_gb * GIB))


def smollm_like():
    # the default model's shape: 30 layers, 3 KV heads of 64 dims, ~98 MB of weights
    return card(n_layers=30, storage=98_421_374, kv_heads=3, attn_heads=9, hidden=576, gguf_file="m.gguf")


cards = st.builds(lambda layers, storage, kv, heads: card(n_layers=layers, storage=storage, kv_heads=kv,
                                                          attn_heads=heads, hidden=heads * 64, gguf_file="m.gguf"),
                  st.integers(1, 200), st.integers(1, 200 * GIB), st.one_of(st.none(), st.integers(1, 64)),
                  st.integers(1, 128))
frees = st.integers(0, 256 * GIB)


@settings(max_examples=200, deadline=None)
@given(cards, frees)
def test_never_more_layers_than_fit_nor_than_the_model_has(model, free):
    layers = layers_that_fit(model, free)
    assert 0 <= layers <= model.n_layers
    assert GPU_RESERVE_BYTES + layers * layer_bytes(model) <= max(free, GPU_RESERVE_BYTES)
    if layers < model.n_layers:  # one more layer would not fit: as many as fit, not fewer
        assert GPU_RESERVE_BYTES + (layers + 1) * layer_bytes(model) > free


@settings(max_examples=100, deadline=None)
@given(cards, st.lists(frees, min_size=0, max_size=4))
def test_the_plan_takes_the_roomiest_device_and_never_offloads_without_one(model, free_list):
    devices = [gpu(i, f / GIB) for i, f in enumerate(free_list)]
    plan = plan_offload(model, devices)
    if not devices:
        assert plan is None  # a node that reports no GPU runs on CPU, as before
        return
    best = max(layers_that_fit(model, d.memory_free_bytes) for d in devices)
    assert plan.n_gpu_layers == best <= model.n_layers and plan.total_layers == model.n_layers
    if best == 0:
        assert plan.device_index is None and plan.pin_env() == {}
    else:
        chosen = devices[plan.device_index]
        assert layers_that_fit(model, chosen.memory_free_bytes) == best
        assert chosen.label() in plan.reason


def test_default_model_on_two_mock_gpus_goes_partly_to_the_larger_one():
    model = smollm_like()
    per_layer = layer_bytes(model)
    assert 27 * MIB < per_layer < 30 * MIB  # 3.4 MiB of weights + 24 MiB of KV (32768 cells)
    plan = plan_offload(model, [gpu(0, 0.5), gpu(1, 1.0)], "node-x")
    assert (plan.device_index, plan.n_gpu_layers, plan.total_layers, plan.mock) == (1, 18, 30, True)
    assert 'GPU 1 "Mock GPU 1" (nvidia, mock)' in plan.reason and "12 on CPU" in plan.reason
    assert "node-x" in plan.reason
    full = plan_offload(model, [gpu(0, 24, mock=False, name="RTX 4090")])
    assert full.n_gpu_layers == 30 and "on CPU" not in full.reason
    used = plan_offload(model, [gpu(0, 24, used_gb=23.9, mock=False)])
    assert used.n_gpu_layers == 0 and used.device_index is None and "all 30 layers on CPU" in used.reason


def test_preview_and_placement_promise_the_same_split_and_the_driver_with_a_gpu_wins():
    nodes = ["a", "b"]
    devices = {"a": [], "b": [gpu(0, 0.5), gpu(1, 1.0)]}
    model = gguf_card(n_layers=30, storage=98_421_374, kv_heads=3, attn_heads=9, hidden=576)
    topo, memory_by_node = topology(nodes, lan(nodes)), mem(*nodes, a=64 * GIB, b=16 * GIB)
    engines = {n: LINUX for n in nodes}
    inst = place(command(model, instance_meta=InstanceMeta.LlamaRpc), topo, memory_by_node,
                 node_engines=engines, node_devices=devices)
    assert isinstance(inst, LlamaRpcInstance) and inst.driver_node == "b"  # a has more RAM but no GPU
    assert (inst.offload.device_index, inst.offload.n_gpu_layers) == (1, 18)
    previews = placement_previews(model, topo, memory_by_node, {}, {}, node_engines=engines, node_devices=devices)
    (llama,) = [p for p in previews if p.instance_meta is InstanceMeta.LlamaRpc and p.instance is not None]
    assert llama.instance.offload == inst.offload and llama.offload == inst.offload.reason
    wire = llama.model_dump(mode="json", by_alias=True)["instance"]["LlamaRpcInstance"]["offload"]
    assert wire["deviceIndex"] == 1 and wire["nGpuLayers"] == 18 and wire["mock"] is True
    plain = place(command(model, instance_meta=InstanceMeta.LlamaRpc), topo, memory_by_node, node_engines=engines)
    assert plain.offload is None  # no devices known: no offload claimed


def test_the_master_places_with_the_devices_of_its_context():
    seq = cluster(("a",))
    context = ctx(("a",), node_engines={"a": LINUX}, node_devices={"a": (gpu(0, 0.5), gpu(1, 1.0))})
    model = gguf_card(n_layers=30, storage=98_421_374, kv_heads=3, attn_heads=9, hidden=576)
    (created,) = decide(seq.state, cmd.PlaceInstance(model_card=model, instance_meta=InstanceMeta.LlamaRpc),
                        context)
    assert created.instance.offload.n_gpu_layers == 18 and created.instance.offload.device_index == 1


def test_the_runner_is_launched_with_the_split_and_pinned_to_its_device():
    nodes = ["b"]
    model = gguf_card(n_layers=30, storage=98_421_374, kv_heads=3, attn_heads=9, hidden=576)
    inst = place(command(model, instance_meta=InstanceMeta.LlamaRpc), topology(nodes), mem("b"),
                 node_devices={"b": [gpu(0, 0.5), gpu(1, 1.0)]})
    argv, env = device_launch(inst)
    assert argv == ["--n-gpu-layers", "18"]
    assert env == {"CUDA_VISIBLE_DEVICES": "1", "CUDA_DEVICE_ORDER": "PCI_BUS_ID", MOCK_DEVICE_ENV: "1"}
    real = place(command(model, instance_meta=InstanceMeta.LlamaRpc), topology(nodes), mem("b"),
                 node_devices={"b": [gpu(0, 24, mock=False, vendor="amd")]})
    assert device_launch(real) == (["--n-gpu-layers", "-1"], {"HIP_VISIBLE_DEVICES": "0"})  # all: -1
    assert device_launch(SimpleNamespace()) == ([], {})  # not a LlamaRpc instance
    # a mock device's layers run on the CPU underneath; a real one gets the planned count
    assert gpu_layers(18, {MOCK_DEVICE_ENV: "1"}) == 0 and gpu_layers(18, {}) == 18 and gpu_layers(None, {}) is None
