"""The lean request path on real nodes: the prompt travels API node -> instance node only, and a
request costs the replicated log two events (its task's creation and deletion).

Node `a` runs the only worker; node `b` (no worker) serves the API, so every request's params go
from b to a over the data plane and its tokens come back the same way.
"""

import json
import uuid
from collections import Counter
from pathlib import Path

import httpx
import pytest
import zstandard

from skulk.testing.cluster import LocalCluster, wait_until
from skulk.testing.serving import chat, chat_stream, ready_instance
from tests.conftest import DEFAULT_MODEL

# What serving a request wrote to the log before (others, e.g. NodeGatheredInfo, accrue on their own).
REQUEST_KINDS = {"TaskCreated", "TaskStatusUpdated", "TaskFailed", "TaskDeleted", "UsageRecorded",
                 "RunnerStatusUpdated", "ChunkGenerated", "TracesCollected", "RequestRejected"}
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


def _contents(path: Path) -> bytes:
    """A file's bytes, decompressed when it is zstd (archives, snapshots)."""
    data = path.read_bytes()
    if data.startswith(ZSTD_MAGIC):
        try:
            return zstandard.ZstdDecompressor().decompressobj().decompress(data)
        except zstandard.ZstdError:
            return data
    return data


def _files_holding(home: Path, marker: bytes) -> list[str]:
    return [str(p) for p in home.rglob("*") if p.is_file() and marker in _contents(p)]


def _events_since(node, since: int) -> list[dict]:
    return node.get(f"/events?since={since}", timeout=10)


def _kinds(events: list[dict]) -> Counter:
    return Counter(next(iter(e)) for e in events)


@pytest.fixture
def lean_cluster(tmp_path, models_dir):
    cluster = LocalCluster(tmp_path, extra_env={"SKULK_MODELS_DIR": str(models_dir), "SKULK_SETTLE_GRACE_SECONDS": "5",
                                                "SKULK_DEFAULT_MODEL__AUTO_PLACE": "false"})
    try:
        a = cluster.add_node("a")
        b = cluster.add_node("b", extra_args=["--no-worker"])
        for node in (a, b):
            cluster.wait_ready(node, timeout=60)
        b_id = b.get("/node_id")

        def placed():
            body = {"model_id": DEFAULT_MODEL, "min_nodes": 1, "excluded_nodes": [b_id]}
            return b.post("/place_instance", body).status_code == 200
        wait_until(placed, 60, interval=0.5, message="placement accepted")
        ready_instance(b, DEFAULT_MODEL, timeout=300)
        yield cluster, a, b
    finally:
        cluster.stop_all()


def _anthropic(node, content: str) -> str:
    body = {"model": DEFAULT_MODEL, "max_tokens": 8, "temperature": 0,
            "messages": [{"role": "user", "content": content}]}
    resp = httpx.post(node.url + "/v1/messages", json=body, timeout=120, trust_env=False)
    assert resp.status_code == 200, resp.text
    return "".join(part.get("text", "") for part in resp.json()["content"])


def test_prompts_stay_off_the_log_and_a_request_costs_two_events(lean_cluster):
    cluster, a, b = lean_cluster
    master = a if b.get("/state")["masterNodeId"] == a.get("/node_id") else b
    marker = f"LEANMARK{uuid.uuid4().hex}"
    wait_until(lambda: not b.get("/state")["tasks"], 30, message="no task open before")
    start = master.get("/state")["lastEventAppliedIdx"]

    answers = [
        chat(b, DEFAULT_MODEL, f"Repeat {marker} once.", max_tokens=8)["choices"][0]["message"]["content"],
        chat_stream(b, DEFAULT_MODEL, f"Say {marker}.", max_tokens=8)[0],
        chat(b, DEFAULT_MODEL, f"Spell {marker}.", max_tokens=8)["choices"][0]["message"]["content"],
        _anthropic(b, f"Echo {marker}."),
    ]
    assert all(answers), answers  # every flavour was served through a's runner
    wait_until(lambda: not master.get("/state")["tasks"], 30, message="every task deleted")

    events = _events_since(master, start + 1)
    kinds = _kinds(events)
    per_request = sum(n for k, n in kinds.items() if k in REQUEST_KINDS)
    assert kinds["TaskCreated"] == len(answers) and kinds["TaskDeleted"] == len(answers), kinds
    assert per_request <= 2 * len(answers), kinds

    needle = marker.encode()
    for node in (a, b):
        assert needle not in json.dumps(node.get("/state", timeout=10)).encode()
        assert needle not in json.dumps(_events_since(node, 0)).encode()
        assert _files_holding(node.home, needle) == []
    counters = [n.get("/v1/diagnostics/node")["counters"] for n in (a, b)]
    assert counters[1]["request_params_sent"] >= len(answers)
    assert counters[0]["request_params_accepted"] >= len(answers)

    # The gateway switch is cluster-wide: turned off through a, b's inference routes refuse too.
    _gateway_switch_reaches_every_node(a, b)


def _chat_status(node) -> int:
    body = {"model": DEFAULT_MODEL, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 2}
    return httpx.post(node.url + "/v1/chat/completions", json=body, timeout=120, trust_env=False).status_code


def _put_gateway(node, enabled: bool) -> None:
    resp = httpx.put(node.url + "/config", json={"config": {"api": {"gateway_enabled": enabled}}}, timeout=10,
                     trust_env=False)
    assert resp.status_code == 200, resp.text


def _gateway_switch_reaches_every_node(a, b) -> None:
    _put_gateway(a, False)
    try:
        for node in (a, b):
            wait_until(lambda: _chat_status(node) == 503, 20, interval=0.2, message=f"gateway off on {node.name}")
        off = httpx.post(b.url + "/v1/chat/completions", json={"model": DEFAULT_MODEL, "messages": [
            {"role": "user", "content": "Hi"}]}, timeout=30, trust_env=False)
        assert "gateway disabled" in off.json()["error"]["message"], off.text
        assert httpx.get(b.url + "/state", trust_env=False).status_code == 200  # admin and state routes work
    finally:
        _put_gateway(b, True)
    for node in (a, b):
        wait_until(lambda: _chat_status(node) == 200, 30, interval=0.2, message=f"gateway on again on {node.name}")
