"""Real nodes: malformed instances get a 400 with the reason; a rogue member's forged events and
commands reach the master and change nothing, and the refusal counters move."""

from datetime import datetime, timezone

import trio

from skulk.node.topics import CLUSTER_PROTOCOL
from skulk.testing.cluster import wait_until
from skulk.testing.rogue import rogue_peer
from skulk.types import commands as cmd
from skulk.types import events as ev
from skulk.types.ids import SessionId
from skulk.types.instances import Host, MlxRingInstance, ShardAssignments
from skulk.types.node import NodeNetworkInterfaces
from skulk.types.shards import PipelineShardMetadata
from skulk.types.wire import ForwardedCommand, LocalEvents
from tests.factories import card


def two_nodes(cluster):
    nodes = [cluster.add_node(f"n{i}", extra_args=["--no-worker"]) for i in range(2)]
    for node in nodes:
        cluster.wait_ready(node)
    ids = [node.get("/node_id") for node in nodes]

    def agreed():
        docs = [n.get("/state") for n in nodes]
        sessions = {(d["sessionId"]["masterNodeId"], d["sessionId"]["electionClock"]) for d in docs}
        known = all(set(ids) <= set(d["topology"]["nodes"]) for d in docs)
        return known and len(sessions) == 1 and docs[0]
    state = wait_until(agreed, 20, message="2 nodes agree on a session and know each other")
    return nodes, ids, state


def ring(instance_id: str, nodes: list[str], *, hosts: dict | None = None, world: int | None = None) -> dict:
    model = card(n_layers=4)
    per = model.n_layers // len(nodes)
    shards, runners = {}, {}
    for rank, node in enumerate(nodes):
        end = model.n_layers if rank == len(nodes) - 1 else (rank + 1) * per
        shards[f"{instance_id}-r{rank}"] = PipelineShardMetadata(
            model_card=model, device_rank=rank, world_size=world or len(nodes), start_layer=rank * per,
            end_layer=end, n_layers=model.n_layers)
        runners[node] = f"{instance_id}-r{rank}"
    default = {n: [Host(ip="127.0.0.1", port=61000 + r) for r in range(len(nodes))] for n in nodes}
    inst = MlxRingInstance(instance_id=instance_id, ephemeral_port=61000,
                           shard_assignments=ShardAssignments(model_id=model.model_id, runner_to_shard=shards,
                                                              node_to_runner=runners),
                           hosts_by_node=default if hosts is None else hosts)
    return {"instance": inst.model_dump(mode="json", by_alias=True)}


def test_malformed_instances_get_400_with_the_reason_and_every_node_stays_up(cluster):
    nodes, ids, _ = two_nodes(cluster)
    a, b = ids
    malformed = {
        "hosts for one node only": (ring("i1", [a, b], hosts={a: [Host(ip="127.0.0.1", port=1)] * 2}), "hosts_by_node"),
        "no ring hosts": (ring("i2", [a, b], hosts={}), "hosts_by_node"),
        "unknown node": (ring("i3", [a, "12D3KooWNobodyHere"]), "unknown node"),
        "world size": (ring("i4", [a, b], world=3), "world size"),
    }
    for what, (body, reason) in malformed.items():
        resp = nodes[1].post("/instance", body)
        assert resp.status_code == 400, (what, resp.text)
        assert reason in resp.json()["error"]["message"], (what, resp.json())
    assert all(n.alive() for n in nodes)
    ok = nodes[1].post("/instance", ring("good", [a, b]))
    assert ok.status_code == 200, ok.text
    wait_until(lambda: all("good" in n.get("/state")["instances"] for n in nodes), 10, message="good one indexed")
    assert all(set(n.get("/state")["instances"]) == {"good"} for n in nodes)
    for node in nodes:  # ordinary members' events are never refused
        assert not {k: v for k, v in faults(node).items() if k.startswith("master.")}, faults(node)


def faults(node) -> dict:
    return node.get("/v1/diagnostics/node")["faults"]


def test_a_rogue_members_forged_events_and_commands_change_nothing(cluster):
    nodes, ids, state = two_nodes(cluster)
    session = SessionId.model_validate(state["sessionId"])
    master = next(n for n, i in zip(nodes, ids) if i == session.master_node_id)
    victim = next(i for i in ids if i != session.master_node_id)
    assert master.post("/instance", ring("keep", ids)).status_code == 200
    wait_until(lambda: all("keep" in n.get("/state")["instances"] for n in nodes), 10, message="instance indexed")
    before_faults = faults(master)
    before = master.get("/state")
    info = NodeNetworkInterfaces(ifaces=[])

    async def attack():
        async with rogue_peer("skulk-test", bootstrap=[master.peer_addr]) as rogue:
            await rogue.wait_connected(session.master_node_id)
            forged_origin = LocalEvents(session=session, origin=f"{victim}/forged", first_origin_idx=0,
                                        events=[ev.NodeGatheredInfo(node_id=victim, when=datetime.now(timezone.utc),
                                                                    info=info)])
            decisions = LocalEvents(session=session, origin=f"{rogue.node_id}/s", first_origin_idx=0, events=[
                ev.ClusterConfigChanged(config={"tracing": {"enabled": True}}),
                ev.InstanceDeleted(instance_id="keep"), ev.NodeTimedOut(node_id=victim)])
            bad_create = ForwardedCommand(session=session, origin=rogue.node_id,
                                          command=cmd.CreateInstance(**_instance(ring("bad", [victim], hosts={}))))
            for msg in (forged_origin, decisions, bad_create):
                await rogue.send(session.master_node_id, CLUSTER_PROTOCOL, msg)

            def refused():
                now = faults(master)
                moved = {k: now.get(k, 0) - before_faults.get(k, 0) for k in
                         ("master.origin_forged", "master.event_refused", "master.command_refused")}
                return all(v >= 1 for v in moved.values()) and moved
            moved = await trio.to_thread.run_sync(lambda: wait_until(refused, 10, message="refusals counted"))
            assert moved["master.event_refused"] >= 3

    trio.run(attack)
    after = [n.get("/state") for n in nodes]
    for doc in after:
        assert set(doc["instances"]) == {"keep"} and set(ids) <= set(doc["topology"]["nodes"])
        assert doc["clusterConfig"] == before["clusterConfig"]
    assert all(n.alive() for n in nodes)


def _instance(body: dict) -> dict:
    return {"instance": MlxRingInstance.model_validate(body["instance"]["MlxRingInstance"])}
