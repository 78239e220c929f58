"""A real node with two mock GPUs (devices.mock in its skulk.yaml): they show in /state marked mock,
the llama.cpp preview names the device and its n_gpu_layers, placing gives exactly that split, the
runner process is pinned to the device (its environ) and given the layers (its argv), and chat answers
(llama.cpp's CPU build runs the layers underneath)."""

from pathlib import Path

import pytest
import yaml

from skulk.testing.cluster import LocalCluster, wait_until
from skulk.testing.serving import chat, ready_instance, unwrap

from .test_llama_engine import PARIS

MODEL = "HuggingFaceTB/SmolLM2-135M-Instruct"
MOCKS = [{"name": "Mock GPU small", "memory_gb": 0.5, "vendor": "nvidia"},
         {"name": "Mock GPU big", "memory_gb": 1.0, "vendor": "nvidia"}]


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    root = tmp_path_factory.mktemp("mock_devices")
    cluster = LocalCluster(root, extra_env={
        "SKULK_SETTLE_GRACE_SECONDS": "5", "SKULK_DEFAULT_MODEL__AUTO_PLACE": "false",
        "SKULK_MODELS_DIR": str(tmp_path_factory.mktemp("empty-models"))})
    try:
        n = cluster.add_node("gpu-box", start=False)
        n.home.mkdir(parents=True, exist_ok=True)  # the node reads skulk.yaml from its working dir, its home
        (n.home / "skulk.yaml").write_text(yaml.safe_dump({"devices": {"mock": MOCKS}}))
        n.start()
        cluster.wait_ready(n)
        yield n
    finally:
        cluster.stop_all()


def _llama_preview(node) -> dict:
    previews = node.get(f"/instance/previews?model_id={MODEL}", timeout=10)["previews"]
    placed = [p for p in previews if p["instance_meta"] == "LlamaRpc" and p["instance"]]
    return placed[0] if placed else None


def test_two_mock_gpus_split_place_pin_and_answer(node):
    node_id = node.get("/node_id")
    system = wait_until(lambda: node.get("/state")["nodeSystem"].get(node_id), 30, message="nodeSystem")
    assert [(d["index"], d["name"], d["mock"]) for d in system["devices"]] == [
        (0, "Mock GPU small", True), (1, "Mock GPU big", True)]
    assert system["resources"]["acceleratorCount"] == 2 and system["resources"]["mockAccelerators"] is True

    preview = wait_until(lambda: _llama_preview(node), 60, message="a LlamaRpc preview")
    promised = unwrap(preview["instance"])[1]["offload"]
    assert promised["deviceIndex"] == 1 and promised["mock"] is True  # the larger device
    assert 0 < promised["nGpuLayers"] < promised["totalLayers"] == 30  # the default model only partly fits
    assert 'GPU 1 "Mock GPU big" (nvidia, mock)' in preview["offload"]
    assert f"{promised['nGpuLayers']} of 30 layers" in preview["offload"]

    resp = node.post("/place_instance", {"model_id": MODEL, "instance_meta": "LlamaRpc", "sharding": "Pipeline",
                                         "min_nodes": 1})
    assert resp.status_code == 200, resp.text
    inst = ready_instance(node, MODEL, timeout=180)
    assert inst["offload"] == promised

    runners = [p for p in node.get("/v1/diagnostics/node", timeout=10)["processes"] if p["role"] == "runner"]
    (runner,) = runners
    environ = dict(kv.split("=", 1) for kv in
                   Path(f"/proc/{runner['pid']}/environ").read_bytes().decode().split("\0") if "=" in kv)
    assert environ["CUDA_VISIBLE_DEVICES"] == "1" and environ["SKULK_MOCK_DEVICE"] == "1"
    argv = Path(f"/proc/{runner['pid']}/cmdline").read_bytes().decode().split("\0")
    assert argv[argv.index("--n-gpu-layers") + 1] == str(promised["nGpuLayers"])

    reply = chat(node, MODEL, PARIS)
    assert "Paris" in reply["choices"][0]["message"]["content"]
