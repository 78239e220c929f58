"""Real node processes on loopback: membership, election, failover, replication, garbage."""

import time
from collections import defaultdict

import trio

from skulk.net import NetConfig, NetService, load_or_create_keypair
from skulk.node.topics import CLUSTER_PROTOCOL, DIRECT_PROTOCOLS, ELECTION_TOPIC, GOSSIP_TOPICS, HEARTBEAT_TOPIC
from skulk.testing.cluster import wait_until


def views(nodes):
    return [n.get("/state") for n in nodes]


def agreed(nodes, expected_ids):
    docs = views(nodes)
    if not all(set(d["nodeIdentities"]) == expected_ids for d in docs):
        return None
    sessions = {(d["sessionId"]["masterNodeId"], d["sessionId"]["electionClock"]) for d in docs}
    return docs if len(sessions) == 1 else None


def start_cluster(cluster, n):
    nodes = [cluster.add_node(f"n{i}") for i in range(n)]
    for node in nodes:
        cluster.wait_ready(node)
    ids = {node.get("/node_id") for node in nodes}
    return nodes, ids


def test_three_nodes_converge_and_fail_over(cluster):
    nodes, ids = start_cluster(cluster, 3)
    last_ready = time.monotonic()
    docs = wait_until(lambda: agreed(nodes, ids), 10, message="3 nodes agree")
    converge_s = time.monotonic() - last_ready
    assert converge_s < 3.0, converge_s
    master_id = docs[0]["masterNodeId"]
    assert master_id in ids
    diag = [n.get("/v1/diagnostics/node")["runtime"] for n in nodes]
    assert sum(d["isMaster"] for d in diag) == 1 and {d["masterNodeId"] for d in diag} == {master_id}

    master = next(n for n in nodes if n.get("/node_id") == master_id)
    survivors = [n for n in nodes if n is not master]
    old_session = docs[0]["sessionId"]
    master.kill()
    killed_at = time.monotonic()

    def new_session_agreed():
        docs = views(survivors)
        sessions = {(d["sessionId"]["masterNodeId"], d["sessionId"]["electionClock"]) for d in docs}
        return len(sessions) == 1 and docs[0]["sessionId"] != old_session and docs
    docs = wait_until(new_session_agreed, 8, message="survivors elect a new master")
    assert time.monotonic() - killed_at < 4.0
    new_master = docs[0]["masterNodeId"]
    assert new_master != master_id and new_master in ids

    master.start()  # same home -> same identity
    cluster.wait_ready(master)
    assert master.get("/node_id") == master_id
    final = wait_until(lambda: agreed(nodes, ids), 15, message="restarted node rejoins the session")
    assert final[0]["masterNodeId"] == new_master  # the incumbent keeps its session


def test_events_from_followers_are_indexed_once_in_origin_order(cluster):
    nodes, ids = start_cluster(cluster, 3)
    docs = wait_until(lambda: agreed(nodes, ids), 10)
    master_id = docs[0]["masterNodeId"]
    followers = [n for n in nodes if n.get("/node_id") != master_id]
    for f in followers:
        assert f.post("/debug/test_events", {"count": 100, "note": f"{f.name}-"}).status_code == 200

    def all_indexed():
        per_node = []
        for node in nodes:
            notes = [e["TestEvent"]["note"] for e in node.get("/events") if "TestEvent" in e]
            per_node.append(notes)
        return all(len(p) == 200 for p in per_node) and per_node
    per_node = wait_until(all_indexed, 20, message="200 test events indexed everywhere")
    for notes in per_node:
        assert len(set(notes)) == 200  # exactly once
        by_origin = defaultdict(list)
        for note in notes:
            origin, i = note.rsplit("-", 1)
            by_origin[origin].append(int(i))
        assert all(seq == list(range(100)) for seq in by_origin.values())

    def same_state():
        docs = views(nodes)
        idx = {d["lastEventAppliedIdx"] for d in docs}
        core = [{k: d[k] for k in ("instances", "topology", "lastSeen", "nodeNetwork", "tasks")} for d in docs]
        return len(idx) == 1 and all(c == core[0] for c in core)
    wait_until(same_state, 15, message="identical replicated state")


def test_other_namespace_never_joins(cluster):
    nodes, ids = start_cluster(cluster, 2)
    outsider = cluster.add_node("outsider", namespace="another-cluster")
    cluster.wait_ready(outsider)
    outsider_id = outsider.get("/node_id")
    wait_until(lambda: agreed(nodes, ids), 10)
    # Give it several dial rounds: it must still be absent everywhere.
    deadline = time.monotonic() + 4
    while time.monotonic() < deadline:
        for doc in views(nodes):
            assert outsider_id not in doc["nodeIdentities"] and outsider_id not in doc["topology"]["nodes"]
        time.sleep(0.5)
    assert set(outsider.get("/state")["nodeIdentities"]) == {outsider_id}


def test_garbage_on_gossip_and_streams_is_counted_and_dropped(cluster, tmp_path):
    nodes, ids = start_cluster(cluster, 2)
    wait_until(lambda: agreed(nodes, ids), 10)
    target = nodes[0]
    target_id = target.get("/node_id")

    async def inject():
        net = NetService(load_or_create_keypair(tmp_path / "evil.key"), NetConfig(
            listen_host="127.0.0.1", port=0, namespace="skulk-test", mdns=False,
            bootstrap_peers=(target.peer_addr,), topics=GOSSIP_TOPICS, protocols=DIRECT_PROTOCOLS))
        async with trio.open_nursery() as nursery:
            await nursery.start(net.run)
            with trio.fail_after(15):
                while target_id not in net.connected_peers():
                    await trio.sleep(0.05)
                for _ in range(5):
                    await net.publish(HEARTBEAT_TOPIC, b"\x01\xc1garbage")
                    await net.publish(ELECTION_TOPIC, b"not msgpack at all")
                    await net.send_direct(target_id, CLUSTER_PROTOCOL, b"\x00\xff\xfe")
                    await trio.sleep(0.2)
            nursery.cancel_scope.cancel()
    trio.run(inject)

    def counted():
        counters = target.get("/v1/diagnostics/node")["counters"]
        return counters.get("malformed_gossip", 0) >= 2 and counters.get("malformed_messages", 0) >= 1
    wait_until(counted, 10, message="garbage counted")
    assert all(n.alive() for n in nodes)
    assert agreed(nodes, ids)
