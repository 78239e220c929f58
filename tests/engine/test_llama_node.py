"""A real node on Linux serves the auto-placed default model with llama.cpp: every API surface
answers, the node advertises its engines in /state, and a multi-node LlamaRpc is refused."""

import pytest

from skulk.testing.cluster import LocalCluster
from skulk.testing.serving import ready_instance, unwrap

from .test_llama_engine import PARIS

MODEL = "HuggingFaceTB/SmolLM2-135M-Instruct"


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    cluster = LocalCluster(tmp_path_factory.mktemp("llama_node"), extra_env={
        "SKULK_SETTLE_GRACE_SECONDS": "5",
        "SKULK_MODELS_DIR": str(tmp_path_factory.mktemp("empty-models"))})  # llama.cpp needs no conversion
    try:
        n = cluster.add_node("solo")
        cluster.wait_ready(n)
        ready_instance(n, MODEL, timeout=180)
        yield n
    finally:
        cluster.stop_all()


def test_the_auto_placed_default_model_is_a_llama_rpc_instance_and_engines_show(node):
    state = node.get("/state")
    (tagged,) = state["instances"].values()
    kind, inst = unwrap(tagged)
    node_id = node.get("/node_id")
    assert kind == "LlamaRpcInstance" and inst["driverNode"] == node_id
    assert {"llama_cpp", "llama_cpp-cpu", "mlx"} <= set(state["nodeSystem"][node_id]["engines"])


def test_openai_chat_answers_paris(node):
    openai = pytest.importorskip("openai")
    client = openai.OpenAI(base_url=node.url + "/v1", api_key="dummy", max_retries=0, timeout=120)
    reply = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": PARIS}],
                                           temperature=0, max_tokens=24)
    assert "Paris" in reply.choices[0].message.content and reply.choices[0].finish_reason == "stop"
    assert reply.usage.prompt_tokens > 10 and reply.usage.completion_tokens > 0
    parts = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": PARIS}],
                                           temperature=0, max_tokens=24, stream=True)
    assert "".join(p.choices[0].delta.content or "" for p in parts if p.choices) == reply.choices[0].message.content


def test_anthropic_and_ollama_answer_paris(node):
    anthropic = pytest.importorskip("anthropic")
    ollama = pytest.importorskip("ollama")
    claude = anthropic.Anthropic(base_url=node.url, api_key="dummy", max_retries=0, timeout=120)
    message = claude.messages.create(model=MODEL, max_tokens=24, extra_body={"temperature": 0},
                                     messages=[{"role": "user", "content": PARIS}])
    assert "Paris" in message.content[0].text and message.stop_reason == "end_turn"
    answer = ollama.Client(host=node.url + "/ollama", timeout=120).chat(
        model=MODEL, messages=[{"role": "user", "content": PARIS}], options={"temperature": 0, "num_predict": 24})
    assert "Paris" in answer.message.content and answer.done


def test_a_multi_node_llama_rpc_placement_is_refused_with_the_reason(node):
    resp = node.post("/place_instance", {"model_id": MODEL, "instance_meta": "LlamaRpc", "min_nodes": 2})
    assert resp.status_code == 400
    assert "llama.cpp's RPC backend" in resp.json()["error"]["message"]
    previews = node.get(f"/instance/previews?model_id={MODEL}")
    metas = {(p["instance_meta"], p["instance"] is not None) for p in previews["previews"]}
    assert ("LlamaRpc", True) in metas


def test_a_client_disconnect_frees_the_sequence_and_the_next_request_is_served(node):
    import httpx

    from skulk.testing.cluster import wait_until

    body = {"model": MODEL, "messages": [{"role": "user", "content": "Tell me a very long story."}],
            "temperature": 0, "max_tokens": 400, "stream": True}
    with httpx.stream("POST", node.url + "/v1/chat/completions", json=body, timeout=60, trust_env=False) as r:
        got = [line for _, line in zip(range(6), r.iter_lines()) if line.startswith("data: {")]
    assert got  # tokens were flowing when the client went away

    def idle():
        state = node.get("/state")
        (tagged,) = state["instances"].values()
        runners = unwrap(tagged)[1]["shardAssignments"]["runnerToShard"]
        return all(next(iter(state["runners"][r])) == "RunnerReady" for r in runners) and not state["tasks"]
    wait_until(idle, 30, message="the runner is idle again after the disconnect")
    reply = node.post("/v1/chat/completions", {"model": MODEL, "temperature": 0, "max_tokens": 24,
                                               "messages": [{"role": "user", "content": PARIS}]}, timeout=60)
    assert reply.status_code == 200 and "Paris" in reply.json()["choices"][0]["message"]["content"]
