"""GET /v1/metrics/history and POST /admin/purge in process: parameters, answers, what is purged."""

import time
from datetime import datetime, timezone

from starlette.testclient import TestClient

from skulk.api.app import create_app
from skulk.node.metric_history import MetricHistory
from skulk.testing.fake_port import FakePort
from skulk.types import commands as cmd
from skulk.types.deployments import Deployment
from skulk.types.state import State
from skulk.types.topology import TopologySnapshot


def client(port: FakePort | None = None, store: MetricHistory | None = None) -> tuple[TestClient, FakePort]:
    port = port or FakePort()
    app = create_app(port)
    app.state.metric_history = store
    return TestClient(app, raise_server_exceptions=False, backend="trio"), port


def filled(n: int = 30) -> MetricHistory:
    store = MetricHistory(None, retention_s=10**9)
    now = time.time()
    for i in range(n):
        store.add({"at": now - n + i, "cpu_percent": float(i), "memory_used_bytes": 1000}, now=now)
    return store


def test_history_of_this_node_raw_and_stepped() -> None:
    c, port = client(store=filled())
    body = c.get("/v1/metrics/history").json()
    assert body["node_id"] == port.node_id and body["step"] is None and len(body["samples"]) == 30
    assert body["samples"][0]["memory_used_bytes"] == 1000
    since = datetime.fromtimestamp(time.time() - 10, timezone.utc).isoformat()
    recent = c.get("/v1/metrics/history", params={"since": since}).json()["samples"]
    assert 9 <= len(recent) <= 11
    stepped = c.get("/v1/metrics/history", params={"step": "15", "node_id": port.node_id}).json()
    assert stepped["step"] == 15 and 2 <= len(stepped["samples"]) <= 3


def test_history_parameters_are_validated() -> None:
    c, _ = client(store=filled())
    for params, param in (({"since": "yesterday"}, "since"), ({"step": "0"}, "step"), ({"step": "abc"}, "step"),
                          ({"since": "2026-01-01T00:00:00"}, "since"), ({"until": "-5"}, "until"),
                          ({"since": "2000", "until": "1000"}, "since"), ({"step": "nan"}, "step")):
        resp = c.get("/v1/metrics/history", params=params)
        assert resp.status_code == 400, params
        assert resp.json()["error"]["param"] == param
    assert c.get("/v1/metrics/history", params={"node_id": "x" * 200}).status_code == 400
    # another node that is not a live peer: 404 naming it
    resp = c.get("/v1/metrics/history", params={"node_id": "12D3KooWother"})
    assert resp.status_code == 404 and "12D3KooWother" in resp.json()["error"]["message"]


def test_history_without_a_store_is_503() -> None:
    c, _ = client(store=None)
    assert c.get("/v1/metrics/history").status_code == 503


def test_purge_needs_something_to_purge() -> None:
    c, port = client(store=filled())
    assert c.post("/admin/purge", json={}).status_code == 400
    assert c.post("/admin/purge", json={"everything": True}).status_code in (400, 422)
    assert port.sent == []


def test_purge_deployments_metrics_and_nodes() -> None:
    state = State(deployments={d: Deployment(deployment_id=d, model_id="org/tiny") for d in ("a", "b")},
                  topology=TopologySnapshot(nodes=["12D3KooWfake", "12D3KooWgone"]))
    store = filled(5)
    c, port = client(FakePort(state=state), store)
    resp = c.post("/admin/purge", json={"deployments": True, "metrics": True, "nodes": True})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["deployments"] == {"deleted": ["a", "b"]}
    assert [x.deployment_id for x in port.sent_of(cmd.DeleteDeployment)] == ["a", "b"]
    assert body["metrics"] == {"cleared": {port.node_id: 5}, "failed": {}} and store.count() == 0
    assert body["nodes"] == {"forgotten": ["12D3KooWgone"]}
    assert [x.node_ids for x in port.sent_of(cmd.ForgetNodes)] == [["12D3KooWgone"]]
