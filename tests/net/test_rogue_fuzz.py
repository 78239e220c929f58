"""A hypothesis-driven rogue member (it holds the cluster key) sends random and mutated messages
of every wire type on every gossip topic and direct protocol to a real 2-node cluster.

Afterwards no node exited, both agree on a master that is one of them, the fault counters
moved, and chat still works (through the data plane: `b` has no worker, rank 0 runs on `a`).
"""

import random
from datetime import datetime, timezone
from uuid import uuid4

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from skulk import codec
from skulk.node.topics import CLUSTER_PROTOCOL, DATA_PROTOCOL, ELECTION_TOPIC, HEARTBEAT_TOPIC
from skulk.testing.cluster import wait_until
from skulk.testing.rogue import RogueThread
from skulk.testing.serving import chat
from skulk.types.chunks import DataChunk, ErrorChunk, TokenChunk
from skulk.types.commands import TestCommand
from skulk.types.election import ElectionMessage
from skulk.types.events import IndexedEvent, TestEvent
from skulk.types.ids import Memory, SessionId
from skulk.types.node import MemoryUsage, NetworkInterfaceInfo, NodeIdentity, SystemPerformanceProfile
from skulk.types.wire import CatchUpRequest, ForwardedCommand, IndexedEvents, LocalEvents, NodeHeartbeat
from tests.conftest import DEFAULT_MODEL
from tests.net.conftest import NAMESPACE, moved

GHOST = "12D3KooWGhostGhostGhostGhostGhostGhostGhostGhostGhost"
# Extremes by the type of the leaf they replace, so that mutants still pass the codec and
# reach the handlers; any type may also land anywhere.
EXTREME_INTS = [2**64 - 1, 2**63, 2**53, 10**18, -1, -(2**63), 0]
EXTREME_STRS = ["", "garbage", "/ip4/999.1.1.1/tcp/0", "/ip4/127.0.0.1/tcp/1/p2p/notapeer", "\x00", "x" * 300]
EXTREMES = [*EXTREME_INTS, *EXTREME_STRS, 1e308, float("nan"), True, None, [], {}, [None] * 40, {"Nope": {}}]
ROUTES = [("gossip", HEARTBEAT_TOPIC), ("gossip", ELECTION_TOPIC), ("direct", CLUSTER_PROTOCOL),
          ("direct", DATA_PROTOCOL)]


@pytest.fixture(scope="module")
def rogue(rogue_target):
    with RogueThread(NAMESPACE, [n.peer_addr for n in rogue_target.nodes]) as thread:
        async def meshed():
            await thread.rogue.wait_connected(*rogue_target.ids)
            for _, topic in ROUTES[:2]:
                await thread.rogue.wait_gossip_mesh(topic, *rogue_target.ids)
        thread.call(meshed)
        yield thread


def base_models(me: str, a: str, b: str, clock: int) -> dict[str, list]:
    """Valid messages of every wire type, by route; mutation then pushes their fields to extremes."""
    mem = Memory(in_bytes=1 << 30)
    session, mine = SessionId(master_node_id=a, election_clock=clock), SessionId(master_node_id=me, election_clock=clock)
    beat = NodeHeartbeat(node_id=me, sent_at=datetime.now(timezone.utc), identity=NodeIdentity(friendly_name="rogue"),
                         memory=MemoryUsage(ram_total=mem, ram_available=mem, swap_total=mem, swap_available=mem),
                         system=SystemPerformanceProfile(), listen_addrs=[f"/ip4/127.0.0.1/tcp/1/p2p/{me}"],
                         interfaces=[NetworkInterfaceInfo(name="lo", ip_address="127.0.0.1")], api_port=1)
    # Statuses that claim another master (forged) or ours with a seniority past the bound: a rogue
    # standing honestly within the bounds is a legitimate candidate, which is not what this tests.
    votes = [ElectionMessage(clock=clock + 1, seniority=10**7, commands_seen=0, proposed_session=s)
             for s in (session, mine, SessionId(master_node_id=GHOST, election_clock=clock + 1))]
    forged_votes = [v.model_copy(update={"seniority": 0}) for v in votes if v.proposed_session.master_node_id != me]
    chunk = DataChunk(command_id=str(uuid4()), sequence=0, chunk=TokenChunk(text="INJECTED"))
    return {
        HEARTBEAT_TOPIC: [beat, beat.model_copy(update={"node_id": b})],
        ELECTION_TOPIC: votes + forged_votes,
        CLUSTER_PROTOCOL: [
            LocalEvents(session=session, origin=me, first_origin_idx=0, events=[TestEvent(note="x")]),
            IndexedEvents(session=session, events=[IndexedEvent(idx=10**6, event=TestEvent())]),
            CatchUpRequest(session=session, next_idx=0),
            ForwardedCommand(session=session, origin=me, command=TestCommand()),
        ],
        DATA_PROTOCOL: [chunk, chunk.model_copy(update={"chunk": ErrorChunk(error_type="x", error_message="y")})],
    }


def mutate(doc, rnd: random.Random):
    """Replace one randomly chosen leaf (or, sometimes, a container) of a JSON-like document."""
    if not isinstance(doc, (dict, list)) or not doc or rnd.random() < 0.1:
        pool = EXTREME_STRS if isinstance(doc, str) else EXTREME_INTS if isinstance(doc, int) else EXTREMES
        return rnd.choice(pool if rnd.random() < 0.8 else EXTREMES)
    if isinstance(doc, dict):
        key = rnd.choice(list(doc))
        return {**doc, key: mutate(doc[key], rnd)}
    i = rnd.randrange(len(doc))
    return [*doc[:i], mutate(doc[i], rnd), *doc[i + 1:]]


def frame_of(doc) -> bytes:
    try:
        return bytes([codec.FORMAT_VERSION]) + msgpack.packb(doc)
    except (OverflowError, TypeError, ValueError):  # msgpack cannot carry it: send it as text
        return bytes([codec.FORMAT_VERSION]) + msgpack.packb(repr(doc))


payloads = st.one_of(
    st.tuples(st.just("bytes"), st.binary(max_size=600)),
    st.tuples(st.just("versioned"), st.binary(max_size=600)),
    st.tuples(st.just("mutated"), st.integers(0, 2**32)),
    st.tuples(st.just("mutated"), st.integers(0, 2**32)),  # twice: mutants reach the most code
    st.tuples(st.just("valid"), st.integers(0, 2**32)),
)
generic = st.tuples(st.sampled_from(ROUTES), st.sampled_from([0, 1]), payloads)
# Fields whose values are free-form on the wire, drawn directly: addresses peers will dial,
# and the numbers the election ranks by (a rogue standing for itself stays out of range).
addresses = st.lists(st.one_of(st.text(max_size=60), st.sampled_from(EXTREME_STRS)), min_size=1, max_size=6)
big_ints = st.one_of(st.integers(-(2**70), 2**70), st.sampled_from(EXTREME_INTS))
heartbeat_addrs = st.tuples(st.just("addrs"), addresses)
election_ints = st.tuples(st.just("votes"), st.sampled_from(range(4)), big_ints, big_ints, big_ints)
messages = st.lists(st.one_of(generic, generic, heartbeat_addrs, election_ints), min_size=1, max_size=10)


def render(payload, models: list) -> bytes:
    kind, *rest = payload
    if kind == "bytes":
        return rest[0]
    if kind == "versioned":
        return bytes([codec.FORMAT_VERSION]) + rest[0]
    rnd = random.Random(rest[0])
    doc = rnd.choice(models).model_dump(mode="json", by_alias=True)
    for _ in range(0 if kind == "valid" else rnd.randint(1, 3)):
        doc = mutate(doc, rnd)
    return frame_of(doc)


def wire_form(message, models, me: str, a: str, b: str) -> tuple[str, str, int, bytes]:
    """(route, topic or protocol, target index, bytes) for one drawn message."""
    if message[0] == "addrs":
        beat = models[HEARTBEAT_TOPIC][0].model_dump(mode="json", by_alias=True)
        return "gossip", HEARTBEAT_TOPIC, 0, frame_of({**beat, "listenAddrs": message[1]})
    if message[0] == "votes":
        _, who, clock, seniority, commands = message
        master = [me, a, b, GHOST][who]
        if master == me and -1 <= seniority <= 10**6:
            seniority += 10**7  # honest candidacy within the bounds is allowed; see base_models
        doc = {"clock": clock, "seniority": seniority, "commandsSeen": commands,
               "proposedSession": {"masterNodeId": master, "electionClock": max(clock, 0)}}
        return "gossip", ELECTION_TOPIC, 0, frame_of(doc)
    (route, where), target, payload = message
    return route, where, target, render(payload, models[where])


@pytest.fixture(scope="module")
def before(rogue_target, rogue):
    return rogue_target.agreed(), rogue_target.all_faults()


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow])
@given(batch=messages)
def test_rogue_messages_of_every_type_never_hurt_the_cluster(rogue_target, rogue, before, batch):
    t, session = rogue_target, before[0]
    models = base_models(rogue.rogue.node_id, t.a_id, t.b_id, session[1])
    peers = [t.a_id, t.b_id]

    async def send_all():
        for message in batch:
            route, where, target, data = wire_form(message, models, rogue.rogue.node_id, t.a_id, t.b_id)
            if route == "gossip":
                await rogue.rogue.publish(where, data)
            else:
                try:
                    await rogue.rogue.send(peers[target], where, data, timeout=2.0)
                except Exception:  # noqa: BLE001 - a node may reset a stream it refused
                    pass
    rogue.call(send_all)
    assert t.alive()


def test_afterwards_the_cluster_agrees_serves_and_counted_the_drops(rogue_target, rogue, before):
    # Runs after the hypothesis test in this module (pytest keeps file order).
    t, (session, faults_before) = rogue_target, before
    assert t.alive(), [n.log_tail() for n in t.nodes]
    master = wait_until(t.agreed, 30, interval=0.3, message="both nodes on one session of one of them")
    assert master[0] in t.ids
    for i, node in enumerate(t.nodes):
        assert moved(faults_before[i], t.faults(node), "") > 10, t.faults(node)
    for node in t.nodes:
        answer = chat(node, DEFAULT_MODEL, "What is the capital of France?", max_tokens=16)
        assert "Paris" in answer["choices"][0]["message"]["content"]
