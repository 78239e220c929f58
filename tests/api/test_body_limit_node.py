"""A real node process: 100 MiB request bodies, with and without Content-Length, get 413 while
the node's memory stays flat, and the node serves on afterwards."""

import threading

import httpx
import psutil
import pytest

from skulk.testing.cluster import LocalCluster

BODY = 100 * 1024 * 1024
CHUNK = 256 * 1024
RSS_SLACK = 20 * 1024 * 1024


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    cluster = LocalCluster(tmp_path_factory.mktemp("body_limit"),
                           extra_env={"SKULK_DEFAULT_MODEL__AUTO_PLACE": "false"})
    try:
        n = cluster.add_node("limits", extra_args=["--no-worker"])
        cluster.wait_ready(n)
        yield n
    finally:
        cluster.stop_all()


class PeakRss:
    """The highest RSS of one process, sampled in a thread while a block runs."""

    def __init__(self, pid: int):
        self.proc, self.peak, self._stop = psutil.Process(pid), 0, threading.Event()

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.proc.memory_info().rss)
            self._stop.wait(0.01)

    def __enter__(self) -> "PeakRss":
        self.start = self.proc.memory_info().rss
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(5)


def body():
    block = b"x" * CHUNK
    for _ in range(BODY // CHUNK):
        yield block


def post(node, path, headers) -> httpx.Response:
    with httpx.Client(trust_env=False, timeout=60) as client:
        return client.post(node.url + path, content=body(), headers=headers)


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
@pytest.mark.parametrize("path", ["/v1/chat/completions", "/ollama/api/chat"])
def test_a_100_mib_body_gets_413_and_memory_stays_flat(node, declared, path):
    headers = {"Content-Type": "application/json"}
    if declared:
        headers["Content-Length"] = str(BODY)
    # One small request first, so lazily built parts of the app are in memory before measuring.
    assert node.post(path, {"model": "m", "messages": []}).status_code < 500
    with PeakRss(node.proc.pid) as rss:
        resp = post(node, path, headers)
    assert resp.status_code == 413, resp.text[:300]
    assert "max_body_bytes" in resp.text
    assert rss.peak - rss.start < RSS_SLACK, f"RSS grew {(rss.peak - rss.start) / 2**20:.1f} MiB"
    assert node.alive() and node.get("/node_id")
    faults = node.get("/v1/diagnostics/node")["faults"]
    assert faults.get("api.body_too_large", 0) >= 1
