"""Cluster messages: garbage, events not from the session's master and a full master inbox are counted."""

import trio

from skulk import codec
from skulk.faults import FAULTS
from skulk.node.dispatch import ClusterMessenger
from skulk.types.ids import SessionId
from skulk.types.wire import CatchUpRequest, ClusterMessage, IndexedEvents

SESSION = SessionId(master_node_id="master", election_clock=3)


def test_garbage_forged_indexing_and_a_full_inbox_are_dropped_and_counted():
    messenger = ClusterMessenger("me", None, "/skulk/cluster/1")
    indexed: list = []
    messenger.on_indexed = indexed.append
    inbox, out = trio.open_memory_channel(1)
    messenger.master_inbox = lambda: inbox
    before = FAULTS.snapshot()
    messenger.receive_bytes("peer", b"\x01not msgpack\xc1")
    messenger.receive_bytes("rogue", codec.encode(IndexedEvents(session=SESSION, events=[]), ClusterMessage))
    messenger.receive_bytes("master", codec.encode(IndexedEvents(session=SESSION, events=[]), ClusterMessage))
    ask = CatchUpRequest(session=SESSION, next_idx=0)
    messenger.receive_bytes("peer", codec.encode(ask, ClusterMessage))
    messenger.receive_bytes("peer", codec.encode(ask, ClusterMessage))  # the inbox holds one
    moved = {k: v - before.get(k, 0) for k, v in FAULTS.snapshot().items()}
    assert moved["cluster.malformed"] == 1 and moved["cluster.indexed_not_from_master"] == 1
    assert moved["master.inbox_full"] == 1
    assert len(indexed) == 1 and out.receive_nowait() == ("peer", ask)
