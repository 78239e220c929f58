"""POST /admin/restart on real node processes: the node execs itself and is back, same id, within 10 s."""

import time

import pytest

from skulk.testing.cluster import LocalCluster, http, wait_until

BACK_WITHIN_S = 10.0  # the done-criterion: same node id on /node_id within 10 s of the POST
REJOIN_S = 15.0


def agreed(nodes, expected_ids):
    """Every node sees all of them and names the same master."""
    docs = [n.get("/state", timeout=1) for n in nodes]
    return (all(set(d["nodeIdentities"]) == expected_ids for d in docs)
            and len({d["masterNodeId"] for d in docs}) == 1)


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    cluster = LocalCluster(tmp_path_factory.mktemp("restart"))
    try:
        nodes = [cluster.add_node(name) for name in ("a", "b")]
        for node in nodes:
            cluster.wait_ready(node)
        ids = {n.get("/node_id") for n in nodes}
        wait_until(lambda: agreed(nodes, ids), 20, message="nodes agree on one session")
        yield nodes, ids
    finally:
        cluster.stop_all()


def post_restart(via, node_id=None):
    return http().post(f"{via.url}/admin/restart", params={"node_id": node_id} if node_id else None, timeout=5)


def runtime_of(node) -> dict:
    return node.get("/v1/diagnostics/node", timeout=1)["runtime"]


def assert_back_in_time(node, node_id, before, posted_at):
    """Same process (exec keeps the pid), a new image (startedAt moved), same id, within the deadline."""
    def restarted():
        runtime = runtime_of(node)
        return runtime["startedAt"] != before["startedAt"] and runtime
    runtime = wait_until(restarted, BACK_WITHIN_S - (time.monotonic() - posted_at), interval=0.1,
                         message=f"{node.name} answers again as a new image\n{node.log_tail()}")
    assert node.get("/node_id", timeout=1) == node_id
    assert time.monotonic() - posted_at < BACK_WITHIN_S
    assert runtime["pid"] == before["pid"] == node.proc.pid and node.alive()
    assert runtime["nodeId"] == node_id and not runtime["restartPending"]


def test_local_restart_is_back_with_the_same_id_and_rejoins(pair):
    nodes, ids = pair
    a = nodes[0]
    a_id, before = a.get("/node_id"), runtime_of(a)

    posted_at = time.monotonic()
    resp = post_restart(a)
    assert resp.status_code == 200 and resp.json() == {"status": "restarting", "node_id": a_id}
    again = post_restart(a)
    assert again.status_code == 409 and again.json()["error"]["code"] == "restart_already_pending"

    assert_back_in_time(a, a_id, before, posted_at)
    wait_until(lambda: agreed(nodes, ids), REJOIN_S, interval=0.1, message="the restarted node rejoins")


def test_remote_restart_through_a_peer(pair):
    nodes, ids = pair
    a, b = nodes
    wait_until(lambda: agreed(nodes, ids), REJOIN_S, interval=0.1, message="the pair is settled")
    b_id, before = b.get("/node_id"), runtime_of(b)

    posted_at = time.monotonic()
    resp = post_restart(a, node_id=b_id)
    assert resp.status_code == 200 and resp.json() == {"status": "restart_sent", "node_id": b_id}
    again = post_restart(a, node_id=b_id)  # relayed to b, whose restart is pending
    assert again.status_code == 409 and again.json()["error"]["code"] == "restart_already_pending"

    assert_back_in_time(b, b_id, before, posted_at)
    wait_until(lambda: agreed(nodes, ids), REJOIN_S, interval=0.1, message="the restarted node rejoins")
