"""Serving under pressure on one real node with the default model (issue 15): readiness probes, the
queue timeout on a loading instance, a burst beyond the pending limit, the gateway switch through
PUT /config, and a non-streamed request past its deadline.

The node runs one request at a time (max_concurrent_requests 1) and accepts two per instance
(max_pending_per_instance 2). The engine's scripted-replies hook makes "LONGREPLY" requests decode a
fixed number of tokens (real decode steps, no early end of text), so durations do not depend on what
the 135M model would say.
"""

import json
import threading
import time

import httpx
import pytest

from skulk.engine.admission import LOAD_DELAY_ENV, SCRIPTED_REPLIES_ENV
from skulk.testing.cluster import LocalCluster, wait_until
from skulk.testing.serving import chat, ready_instance, runner_status_names, unwrap
from tests.serving.conftest import DEFAULT_MODEL

pytest.importorskip("skulk.runner.supervisor")
SCRIPTS = {"LONGREPLY": " ".join(["word"] * 1000), "MEDREPLY": " ".join(["word"] * 150), "SHORTREPLY": "ok"}


@pytest.fixture(scope="module")
def node(tmp_path_factory, models_dir):
    cluster = LocalCluster(tmp_path_factory.mktemp("admission"), extra_env={
        "SKULK_MODELS_DIR": str(models_dir), "SKULK_SETTLE_GRACE_SECONDS": "5",
        "SKULK_MAX_CONCURRENT_REQUESTS": "1", "SKULK_INFERENCE__MAX_PENDING_PER_INSTANCE": "2",
        "SKULK_API__QUEUE_TIMEOUT_SECONDS": "1", SCRIPTED_REPLIES_ENV: json.dumps(SCRIPTS),
        LOAD_DELAY_ENV: "6"})  # the first request surely finds the instance loading
    try:
        n = cluster.add_node("solo")
        cluster.wait_ready(n)
        yield n
    finally:
        cluster.stop_all()


def body(trigger: str, **extra) -> dict:
    return {"model": DEFAULT_MODEL, "messages": [{"role": "user", "content": trigger}], "max_tokens": 1100, **extra}


def post(node, payload: dict, timeout: float = 120.0) -> httpx.Response:
    return httpx.post(node.url + "/v1/chat/completions", json=payload, timeout=timeout, trust_env=False)


def put_config(node, config: dict) -> None:
    resp = httpx.put(node.url + "/config", json={"config": config}, timeout=10, trust_env=False)
    assert resp.status_code == 200, resp.text


def runner_statuses(node) -> list[str]:
    state = node.get("/state")
    return [name for tagged in state["instances"].values() for name in runner_status_names(state, unwrap(tagged)[1])]


def open_tasks(node) -> dict:
    return node.get("/state")["tasks"]


def test_probes_and_a_request_on_a_loading_instance(node):
    assert node.get("/health") == {"status": "ok"}
    wait_until(lambda: httpx.get(node.url + "/ready", trust_env=False).status_code == 200, 30,
               message="/ready once the node leads its own session")

    def loading_instance():
        state = node.get("/state")
        return next((iid for iid, tagged in state["instances"].items()
                     if unwrap(tagged)[1]["shardAssignments"]["modelId"] == DEFAULT_MODEL), None)
    wait_until(loading_instance, 60, interval=0.05, message="the default model is auto-placed")
    model_probe = httpx.get(node.url + "/ready", params={"model": DEFAULT_MODEL}, trust_env=False)
    assert model_probe.status_code == 503 and model_probe.json()["reason"]
    started = time.monotonic()
    resp = post(node, body("SHORTREPLY"))  # the runner is still starting: 1 s of queue timeout, then 503
    assert resp.status_code == 503, resp.text
    assert resp.headers["Retry-After"] and "queue_timeout_seconds" in resp.json()["error"]["message"]
    assert 0.9 <= time.monotonic() - started < 10
    ready_instance(node, DEFAULT_MODEL, timeout=180)
    assert httpx.get(node.url + "/ready", params={"model": DEFAULT_MODEL}, trust_env=False).status_code == 200
    assert chat(node, DEFAULT_MODEL, "SHORTREPLY")["choices"][0]["message"]["content"] == "ok"


def test_a_burst_beyond_the_pending_limit_gets_429s_and_the_rest_complete(node):
    ready_instance(node, DEFAULT_MODEL, timeout=180)
    results: list[tuple[int, str | None, float, str]] = []
    lock = threading.Lock()

    def one(i: int) -> None:
        started = time.monotonic()
        stream = i % 2 == 1
        with httpx.stream("POST", node.url + "/v1/chat/completions", json=body("MEDREPLY", stream=stream),
                          timeout=180, trust_env=False) as r:
            first = time.monotonic() - started  # headers: a 429 must come before any stream starts
            text = r.read().decode()
        with lock:
            results.append((r.status_code, r.headers.get("Retry-After"), first, text))

    threads = [threading.Thread(target=one, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=240)
    statuses = sorted(r[0] for r in results)
    assert len(results) == 8 and set(statuses) <= {200, 429}, statuses
    refused = [r for r in results if r[0] == 429]
    served = [r for r in results if r[0] == 200]
    assert len(served) >= 2 and refused, statuses  # two fit (one running, one waiting); the rest do not
    assert all(r[1] and "pending limit" in r[3] for r in refused)
    assert max(r[2] for r in refused) < 5  # refused at once, never queued
    assert all("word" in r[3] and '"error"' not in r[3] for r in served), [r[3][-300:] for r in served]
    wait_until(lambda: open_tasks(node) == {}, 30, message="no task left in state after the burst")


def test_gateway_switch_through_put_config(node):
    ready_instance(node, DEFAULT_MODEL, timeout=180)
    put_config(node, {"api": {"gateway_enabled": False}})
    try:
        wait_until(lambda: post(node, body("SHORTREPLY")).status_code == 503, 20, interval=0.2,
                   message="chat refused once the gateway is off")
        off = post(node, body("SHORTREPLY"))
        assert "gateway disabled" in off.json()["error"]["message"]
        assert httpx.get(node.url + "/state", trust_env=False).status_code == 200
        assert httpx.get(node.url + "/ready", trust_env=False).status_code == 200
    finally:
        put_config(node, {"api": {"gateway_enabled": True}})
    wait_until(lambda: post(node, body("SHORTREPLY")).status_code == 200, 20, interval=0.2,
               message="chat served again once the gateway is on")


def test_a_non_streamed_request_past_its_deadline_gets_504_and_its_task_is_cancelled(node):
    ready_instance(node, DEFAULT_MODEL, timeout=180)
    put_config(node, {"api": {"request_timeout_seconds": 1.5}})
    try:
        wait_until(lambda: node.get("/config")["effective"]["api"]["request_timeout_seconds"] == 1.5, 20,
                   message="the new deadline applied")
        started = time.monotonic()
        resp = post(node, body("LONGREPLY"))  # 1000 decode steps: over 10 s on this machine
        took = time.monotonic() - started
        assert resp.status_code == 504, resp.text
        assert resp.json()["error"]["code"] == "request_timeout" and 1.4 <= took < 10
        wait_until(lambda: open_tasks(node) == {}, 10, message="the timed-out task leaves the state")
        # The runner stopped it long before its 1000 tokens: back to ready, nothing running.
        wait_until(lambda: runner_statuses(node) == ["RunnerReady"], 6, interval=0.1,
                   message="the runner's task is cancelled")
    finally:
        put_config(node, {})
