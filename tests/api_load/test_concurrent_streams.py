"""32 streaming clients against one node: all finish, none waits 10 s without a byte."""

import time

import httpx
import pytest
import trio

from skulk.testing.cluster import LocalCluster, wait_until
from skulk.testing.serving import ready_instance

MODEL = "HuggingFaceTB/SmolLM2-135M-Instruct"
CLIENTS = 32


@pytest.fixture
def node(tmp_path, tmp_path_factory):
    from skulk.models import ensure_model_dir
    models = tmp_path_factory.mktemp("models")
    ensure_model_dir(MODEL, models, offline=True)
    # all 32 are admitted (the default pending limit, 2 x the batch cap, would answer 429 past 16)
    cluster = LocalCluster(tmp_path, extra_env={"SKULK_MODELS_DIR": str(models),
                                                "SKULK_INFERENCE__MAX_PENDING_PER_INSTANCE": str(CLIENTS)})
    n = cluster.add_node("load")
    try:
        cluster.wait_ready(n)
        ready_instance(n, MODEL, timeout=180)
        yield n
    finally:
        cluster.stop_all()


async def _one_client(client: httpx.AsyncClient, i: int, results: list) -> None:
    body = {"model": MODEL, "stream": True, "max_tokens": 12, "temperature": 0,
            "messages": [{"role": "user", "content": f"Say something about the number {i}."}]}
    last, worst, done = time.monotonic(), 0.0, False
    async with client.stream("POST", "/v1/chat/completions", json=body) as resp:
        assert resp.status_code == 200, (resp.status_code, await resp.aread())
        async for raw in resp.aiter_raw():
            now = time.monotonic()
            worst, last = max(worst, now - last), now
            done = done or b"data: [DONE]" in raw
    results.append((i, worst, done))


def test_32_concurrent_streams_all_finish_without_long_silences(node):
    results: list = []

    async def main():
        limits = httpx.Limits(max_connections=CLIENTS + 4)
        async with httpx.AsyncClient(base_url=node.url, timeout=120, limits=limits, trust_env=False) as client:
            with trio.fail_after(400):
                async with trio.open_nursery() as nursery:
                    for i in range(CLIENTS):
                        nursery.start_soon(_one_client, client, i, results)
    trio.run(main)
    assert len(results) == CLIENTS and all(done for _, _, done in results)
    worst = max(w for _, w, _ in results)
    assert worst < 10.0, worst
    wait_until(lambda: not any("TextGeneration" in t for t in node.get("/state")["tasks"].values()), 30,
               message="every finished request removed from state")
