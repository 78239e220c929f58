"""Webhooks from real nodes: a node killed -> node.lost, started again -> node.recovered; a deployment
that becomes ready -> deployment.ready, then its lease -> lease.expiring, lease.expired. The
receiver is a local HTTP server on 127.0.0.1."""

import httpx

from skulk.testing.cluster import wait_until
from tests.webhook_receiver import webhook_receiver

DEFAULT_MODEL = "HuggingFaceTB/SmolLM2-135M-Instruct"
# node infos come every 10 s: a timeout above that, small enough for a quick loss
FAST = {"SKULK_NODE_TIMEOUT_SECONDS": "12", "SKULK_SETTLE_GRACE_SECONDS": "2",
        "SKULK_DEFAULT_MODEL__AUTO_PLACE": "false"}


def two_nodes(cluster):
    cluster.extra_env.update(FAST)
    a = cluster.add_node("a", extra_args=["--force-master"])
    cluster.wait_ready(a)
    b = cluster.add_node("b")
    cluster.wait_ready(b)
    ids = {a.get("/node_id"), b.get("/node_id")}
    wait_until(lambda: all(set(n.get("/state")["nodeIdentities"]) == ids and
                           n.get("/state")["masterNodeId"] == a.get("/node_id") for n in (a, b)),
               20, message="one session led by a")
    return a, b


def turn_on(a, b, url: str) -> None:
    """Set the webhook on the follower: PUT /config reaches the master as a live cluster key."""
    resp = httpx.put(b.url + "/config", json={"config": {"notifications": {"webhook_url": url}}},
                     timeout=10, trust_env=False)
    assert resp.status_code == 200, resp.text
    wait_until(lambda: a.get("/config")["effective"]["notifications"]["webhook_url"] == url, 10,
               message="the master took the webhook url live")


def of_kind(rx, kind: str) -> list[dict]:
    return [body for body in list(rx.bodies) if body.get("event") == kind]


def test_node_lost_and_recovered(cluster):
    with webhook_receiver() as rx:
        a, b = two_nodes(cluster)
        turn_on(a, b, rx.url)
        b_id = b.get("/node_id")
        b.kill()
        lost = wait_until(lambda: of_kind(rx, "node.lost"), 45, message=f"node.lost for b\n{a.log_tail()}")
        assert lost[0]["node_id"] == b_id, (rx.bodies, a.get("/node_id"), b_id)
        assert lost[0]["at"] and "lost" in lost[0]["message"]
        assert set(lost[0]) == {"event", "deployment_id", "model_id", "node_id", "message", "at"}
        b.start()
        cluster.wait_ready(b)
        back = wait_until(lambda: of_kind(rx, "node.recovered"), 30, message="node.recovered for b")
        assert back[0]["node_id"] == b_id
        assert len(of_kind(rx, "node.lost")) == 1  # sent once, by the master only
        sent = wait_until(lambda: _counter(a, "sent") >= 2 and _counter(a, "sent"), 5, message="counted")
        assert sent >= 2


def test_deployment_ready_then_its_lease_runs_out(cluster, models_dir):
    """ready, lease.expiring, lease.expired, and the planned stop raises no deployment.failed."""
    cluster.extra_env.update({"SKULK_MODELS_DIR": str(models_dir), "SKULK_DEPLOYMENTS__EXPIRY_WARNING_SECONDS": "80"})
    with webhook_receiver() as rx:
        a, b = two_nodes(cluster)
        turn_on(a, b, rx.url)
        resp = a.post("/v1/deployments", {"model_id": DEFAULT_MODEL, "lease_seconds": 90})
        assert resp.status_code in (200, 201), resp.text
        dep_id = resp.json()["deployment_id"]
        ready = wait_until(lambda: of_kind(rx, "deployment.ready"), 80,
                           message=f"deployment.ready\n{a.log_tail()}")
        assert ready[0]["deployment_id"] == dep_id and ready[0]["model_id"] == DEFAULT_MODEL
        expiring = wait_until(lambda: of_kind(rx, "lease.expiring"), 30, message="lease.expiring")
        assert expiring[0]["deployment_id"] == dep_id
        expired = wait_until(lambda: of_kind(rx, "lease.expired"), 120, message="lease.expired")
        assert expired[0]["deployment_id"] == dep_id
        assert rx.kinds().index("lease.expiring") < rx.kinds().index("lease.expired")
        wait_until(lambda: not a.get("/v1/deployments")["data"], 30, message="the deployment is gone")
        assert of_kind(rx, "deployment.failed") == [] and len(of_kind(rx, "lease.expired")) == 1


def _counter(node, outcome: str) -> float:
    text = httpx.get(node.url + "/metrics", timeout=3, trust_env=False).text
    for line in text.splitlines():
        if line.startswith(f'skulk_notifications_total{{outcome="{outcome}"}}'):
            return float(line.rsplit(" ", 1)[1])
    return 0.0
