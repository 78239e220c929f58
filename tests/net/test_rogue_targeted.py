"""A rogue member (it holds the cluster key) attacks a real 2-node cluster, one attack per test.

Each attack must leave both nodes running, on the same session as before, still serving, and
must move the fault counter that names what was dropped.
"""

import json
import queue
import threading
from datetime import datetime, timezone

import httpx
import msgpack
import trio

from skulk import codec
from skulk.node.topics import DATA_PROTOCOL, ELECTION_TOPIC, GOSSIP_TOPICS, HEARTBEAT_TOPIC
from skulk.testing.cluster import wait_until
from skulk.testing.rogue import RoguePeer, rogue_peer
from skulk.testing.serving import chat
from skulk.types.chunks import DataChunk, TokenChunk
from skulk.types.election import ElectionMessage
from skulk.types.ids import Memory, SessionId
from skulk.types.node import MemoryUsage, NodeIdentity, SystemPerformanceProfile
from skulk.types.wire import NodeHeartbeat
from tests.conftest import DEFAULT_MODEL
from tests.net.conftest import NAMESPACE, moved

GHOST = "12D3KooWGhostGhostGhostGhostGhostGhostGhostGhostGhost"


def attack(target, fn) -> None:
    """Run `fn(rogue)` with a rogue connected to both nodes and meshed on every topic."""
    async def main():
        with trio.fail_after(60):
            async with rogue_peer(NAMESPACE, bootstrap=[n.peer_addr for n in target.nodes]) as rogue:
                await rogue.wait_connected(*target.ids)
                for topic in GOSSIP_TOPICS:
                    await rogue.wait_gossip_mesh(topic, *target.ids)
                await fn(rogue)
    trio.run(main)


def still_fine(target, session) -> None:
    assert target.alive(), [n.log_tail() for n in target.nodes]
    assert target.agreed() == session
    answer = chat(target.b, DEFAULT_MODEL, "Say hello.", max_tokens=4)
    assert answer["choices"][0]["message"]["content"]


def wait_moved(target, before, prefix, nodes=None) -> None:
    nodes = nodes or target.nodes
    def grew():
        return all(moved(before[target.nodes.index(n)], target.faults(n), prefix) > 0 for n in nodes)
    wait_until(grew, 15, interval=0.2, message=f"fault counters {prefix} moved")


def rogue_heartbeat(rogue: RoguePeer, **fields) -> NodeHeartbeat:
    mem = Memory(in_bytes=1 << 30)
    return NodeHeartbeat(node_id=rogue.node_id, sent_at=datetime.now(timezone.utc),
                         identity=NodeIdentity(friendly_name="rogue"),
                         memory=MemoryUsage(ram_total=mem, ram_available=mem, swap_total=mem, swap_available=mem),
                         system=SystemPerformanceProfile(), **fields)


def test_unparsable_addresses_in_a_heartbeat(rogue_target):
    t = rogue_target
    session, before = t.agreed(), t.all_faults()

    async def fn(rogue):
        other = t.a_id
        addrs = ["garbage", "/ip4/127.0.0.1/tcp/99999", "/ip4/127.0.0.1/tcp/1/p2p/" + other, "", "/dns4/x/tcp/1"]
        for _ in range(3):
            await rogue.publish(HEARTBEAT_TOPIC, rogue_heartbeat(rogue, listen_addrs=addrs))
            await trio.sleep(0.3)  # pacing only: gossip is best effort; the counters are awaited below

    attack(t, fn)
    wait_moved(t, before, "gossip.bad_listen_addr")
    wait_moved(t, before, "gossip.foreign_listen_addr")
    still_fine(t, session)


def test_a_vote_for_a_master_that_does_not_exist_with_huge_seniority(rogue_target):
    t = rogue_target
    session, before = t.agreed(), t.all_faults()
    clock = session[1] + 1

    async def fn(rogue):
        ghost = SessionId(master_node_id=GHOST, election_clock=clock)
        mine = SessionId(master_node_id=rogue.node_id, election_clock=clock)
        for _ in range(3):
            await rogue.publish(ELECTION_TOPIC, ElectionMessage(
                clock=clock, seniority=10**15, proposed_session=ghost, commands_seen=10**15))
            await rogue.publish(ELECTION_TOPIC, ElectionMessage(
                clock=clock, seniority=10**15, proposed_session=mine, commands_seen=0))
            await trio.sleep(0.3)

    attack(t, fn)
    wait_moved(t, before, "election.forged_sender")
    wait_moved(t, before, "election.seniority_out_of_range")
    still_fine(t, session)


def test_a_clock_at_two_to_the_64_minus_one(rogue_target):
    t = rogue_target
    session, before = t.agreed(), t.all_faults()

    async def fn(rogue):
        raw = {"clock": 2**64 - 1, "seniority": 0, "commandsSeen": 0,
               "proposedSession": {"masterNodeId": rogue.node_id, "electionClock": 2**64 - 1}}
        wire_max = ElectionMessage(clock=2**53 - 1, seniority=0, commands_seen=0, proposed_session=SessionId(
            master_node_id=rogue.node_id, election_clock=2**53 - 1))
        for _ in range(3):
            await rogue.publish(ELECTION_TOPIC, bytes([codec.FORMAT_VERSION]) + msgpack.packb(raw))
            await rogue.publish(ELECTION_TOPIC, wire_max)  # passes the wire bounds, not the core's
            await trio.sleep(0.3)

    attack(t, fn)
    wait_moved(t, before, "election.malformed")
    wait_moved(t, before, "election.clock_jump")
    still_fine(t, session)


def stream_chat(node, content: str, max_tokens: int, on_command_id) -> str:
    """A streaming chat; reports the command id from the SSE preamble as soon as it arrives."""
    body = {"model": DEFAULT_MODEL, "messages": [{"role": "user", "content": content}], "temperature": 0,
            "max_tokens": max_tokens, "stream": True}
    text = []
    with httpx.stream("POST", node.url + "/v1/chat/completions", json=body, timeout=120, trust_env=False) as r:
        for line in r.iter_lines():
            if line.startswith(": command_id "):
                on_command_id(line.split()[-1])
            elif line.startswith("data: {"):
                payload = json.loads(line[6:])
                assert "error" not in payload, payload
                text += [c["delta"].get("content") or "" for c in payload.get("choices", [])]
    return "".join(text)


def test_a_data_chunk_injected_into_another_nodes_stream(rogue_target):
    t = rogue_target
    session, before = t.agreed(), t.all_faults()
    command_ids: queue.Queue[str] = queue.Queue()
    result: dict = {}

    def client():  # a real streaming chat on b; rank 0 runs on a
        try:
            result["text"] = stream_chat(t.b, "Write a long story about a fox.", 300, command_ids.put)
        except BaseException as exc:  # noqa: BLE001 - reported by the test thread below
            result["error"] = exc
            command_ids.put("")

    async def fn(rogue):
        thread = threading.Thread(target=client)
        thread.start()
        command_id = await trio.to_thread.run_sync(command_ids.get)
        for seq in range(60):
            chunk = DataChunk(command_id=command_id, sequence=1000 + seq, chunk=TokenChunk(text=" INJECTED"))
            await rogue.send(t.b_id, DATA_PROTOCOL, chunk)
        await trio.to_thread.run_sync(thread.join)

    attack(t, fn)
    assert "error" not in result, result.get("error")
    assert result["text"] and "INJECTED" not in result["text"]
    wait_moved(t, before, "data.forged_sender", nodes=[t.b])
    still_fine(t, session)
