"""Warm cache on a real node with the real default model (llama.cpp): a deployment idle past its
keep-alive is paused (runner alive, memory released), the next chat wakes it in place faster than a
cold load, a pinned one never pauses, and over the RAM cap a paused one drops to cold and still wakes."""

import json
import time

import httpx
import psutil

from skulk.testing.cluster import wait_until
from skulk.testing.serving import chat

MODEL = "HuggingFaceTB/SmolLM2-135M-Instruct"
QUESTION = "What is the capital of France? Answer with one word."
ENV = {"SKULK_DEFAULT_MODEL__AUTO_PLACE": "false", "SKULK_SETTLE_GRACE_SECONDS": "2"}


def put_warm(node, **warm) -> None:
    resp = httpx.put(node.url + "/config", json={"config": {"warm_cache": warm}}, timeout=10, trust_env=False)
    assert resp.status_code == 200, resp.text
    wait_until(lambda: (node.get("/state").get("clusterConfig") or {}).get("warm_cache", {}) == warm, 10,
               message="warm_cache reached the cluster config")


def deploy(node, **fields) -> str:
    resp = node.post("/v1/deployments", {"model_id": MODEL, "instance_meta": "LlamaRpc", **fields})
    assert resp.status_code in (200, 201), resp.text
    return resp.json()["deployment_id"]


def status(node, dep_id: str) -> str:
    return node.get("/state")["deployments"][dep_id]["status"]


def runner_states(node, dep_id: str) -> list[tuple[str, dict]]:
    state = node.get("/state")
    out = []
    for tagged in state["instances"].values():
        inst = next(iter(tagged.values()))
        if inst.get("deploymentId") == dep_id:
            for rid in inst["shardAssignments"]["runnerToShard"]:
                out.append(next(iter(state["runners"].get(rid, {"missing": {}}).items())))
    return out


def runner_procs(node) -> list[psutil.Process]:
    kids = psutil.Process(node.proc.pid).children(recursive=True)
    return [p for p in kids if any("worker_main" in part for part in p.cmdline())]


def first_token_s(node) -> tuple[float, str, list[str]]:
    """Seconds to the first streamed token, the whole text, and the SSE lines (an error fails)."""
    body = {"model": MODEL, "messages": [{"role": "user", "content": QUESTION}], "temperature": 0,
            "max_tokens": 24, "stream": True}
    start, first, text, lines = time.monotonic(), None, [], []
    with httpx.stream("POST", node.url + "/v1/chat/completions", json=body, timeout=180, trust_env=False) as r:
        assert r.status_code == 200, r.read()
        for line in r.iter_lines():
            lines.append(line)
            if line.startswith("data: {"):
                payload = json.loads(line[6:])
                assert "error" not in payload, payload
                delta = "".join(c["delta"].get("content") or "" for c in payload.get("choices", []))
                if delta and first is None:
                    first = time.monotonic() - start
                text.append(delta)
    return first, "".join(text), [x for x in lines if x]


def wait_status(node, dep_id: str, wanted: str, timeout: float) -> float:
    start = time.monotonic()
    wait_until(lambda: status(node, dep_id) == wanted, timeout, interval=0.1,
               message=f"{dep_id} {wanted}\n{node.log_tail()}")
    return time.monotonic() - start


def test_idle_pause_wake_pinned_and_cold_drop(cluster, models_dir):
    cluster.extra_env.update({"SKULK_MODELS_DIR": str(models_dir), **ENV})
    node = cluster.add_node("solo")
    cluster.wait_ready(node)
    wait_until(lambda: node.get("/state")["nodeMemory"], 20, message="memory info")
    put_warm(node, busy_guard_seconds=0)

    dep = deploy(node, keep_alive_seconds=4)
    placed_s = wait_status(node, dep, "ready", 180)  # placement, process start, load, warmup
    first_s, reference, _ = first_token_s(node)
    cold_s = placed_s + first_s
    [proc] = runner_procs(node)
    loaded_rss = proc.memory_info().rss

    wait_status(node, dep, "paused", 30)
    [(_, paused)] = wait_until(lambda: [(n, b) for n, b in runner_states(node, dep)
                                        if n == "RunnerPaused" and b.get("rssBytes")], 20, message="runner paused")
    assert proc.is_running() and paused["rssBytes"] < loaded_rss - 50 * 2**20, (paused, loaded_rss)
    assert proc.memory_info().rss < loaded_rss - 50 * 2**20

    wake_s, text, lines = first_token_s(node)  # the stream waits for the wake with keep-alives, no error
    assert text == reference and lines[-1] == "data: [DONE]", (lines, node.log_tail(40))
    assert [p.pid for p in runner_procs(node)] == [proc.pid]  # woken in place, not started again
    assert wake_s < cold_s, (wake_s, cold_s)
    wait_status(node, dep, "ready", 30)
    print(f"cold load {cold_s:.2f} s, wake {wake_s:.2f} s")

    pinned = deploy(node, keep_alive_seconds=2, pinned=True)
    wait_status(node, pinned, "ready", 120)
    wait_status(node, dep, "paused", 30)  # the first one idles out again meanwhile
    assert status(node, pinned) == "ready" and [s for s, _ in runner_states(node, pinned)] in (
        ["RunnerReady"], ["RunnerRunning"])

    assert node.delete(f"/v1/deployments/{pinned}").status_code == 200
    put_warm(node, busy_guard_seconds=0, max_ram_gb=0.01)  # under one model: a paused one goes cold
    wait_until(lambda: runner_states(node, dep) == [] and not runner_procs(node), 30,
               message=f"dropped to cold\n{node.log_tail()}")
    assert status(node, dep) == "paused"
    assert chat(node, MODEL, QUESTION, timeout=180)["choices"][0]["message"]["content"] == reference
    assert status(node, dep) in ("starting", "ready")
