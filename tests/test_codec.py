"""skulk.codec: round trips, and nothing but CodecError on bad input."""

import random
from datetime import datetime, timezone

import msgpack
import pytest
from pydantic import TypeAdapter

from skulk import codec
from skulk.errors import CodecError
from skulk.types.commands import PlaceInstance
from skulk.types.events import (
    Event, IndexedEvent, InstanceCreated, NodeGatheredInfo, StateSnapshotHydrated, TaskCreated,
    TestEvent, TopologyEdgeCreated,
)
from skulk.types.ids import Memory, SessionId
from skulk.types.instances import Host, MlxRingInstance, ShardAssignments
from skulk.types.models import ModelCard
from skulk.types.node import NetworkInterfaceInfo, NodeNetworkInterfaces
from skulk.types.shards import PipelineShardMetadata
from skulk.types.state import State
from skulk.types.tasks import ChatMessage, TextGeneration, TextGenerationTaskParams
from skulk.types.topology import Connection, SocketConnection
from skulk.types.wire import CatchUpRequest, ClusterMessage, ForwardedCommand, IndexedEvents

CARD = ModelCard(
    model_id="org/tiny", n_layers=4, hidden_size=64, supports_tensor=False,
    tasks=["TextGeneration"], storage_size=Memory(in_bytes=1234),
)
SESSION = SessionId(master_node_id="n1", election_clock=3)


def _instance() -> MlxRingInstance:
    shard = PipelineShardMetadata(
        model_card=CARD, device_rank=0, world_size=1, start_layer=0, end_layer=4, n_layers=4
    )
    return MlxRingInstance(
        instance_id="i1",
        shard_assignments=ShardAssignments(
            model_id="org/tiny", runner_to_shard={"r1": shard}, node_to_runner={"n1": "r1"}
        ),
        hosts_by_node={"n1": [Host(ip="127.0.0.1", port=5000)]},
        ephemeral_port=5001,
    )


def _events() -> list:
    params = TextGenerationTaskParams(model="org/tiny", input=[ChatMessage(role="user", content="hi")])
    return [
        TestEvent(note="hello"),
        NodeGatheredInfo(
            node_id="n1", when=datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc),
            info=NodeNetworkInterfaces(ifaces=[NetworkInterfaceInfo(name="lo", ip_address="127.0.0.1")]),
        ),
        InstanceCreated(instance=_instance()),
        TaskCreated(task_id="t1", task=TextGeneration(
            task_id="t1", instance_id="i1", command_id="c1", task_params=params)),
        TopologyEdgeCreated(conn=Connection(
            source="n1", sink="n2", edge=SocketConnection(sink_multiaddr="/ip4/1.2.3.4/tcp/1"))),
        StateSnapshotHydrated(state=State(last_event_applied_idx=7, instances={"i1": _instance()})),
    ]


@pytest.mark.parametrize("event", _events(), ids=lambda e: type(e).__name__)
def test_event_round_trip_through_union(event):
    data = codec.encode(event, Event)
    assert data[0] == codec.FORMAT_VERSION
    assert codec.decode(data, Event) == event


def test_model_encodes_without_adapter_and_decodes_into_union():
    event = TestEvent(note="x")
    assert codec.decode(codec.encode(event), Event) == event


def test_indexed_event_and_state_round_trip():
    for i, event in enumerate(_events()):
        indexed = IndexedEvent(idx=i, event=event)
        assert codec.decode(codec.encode(indexed), IndexedEvent) == indexed
    state = State(last_event_applied_idx=3, instances={"i1": _instance()})
    assert codec.decode(codec.encode(state), State) == state


def test_payload_is_camel_case_and_tagged():
    raw = msgpack.unpackb(codec.encode(IndexedEvent(idx=2, event=TestEvent(note="n")))[1:])
    assert raw["idx"] == 2
    assert raw["event"]["TestEvent"]["note"] == "n"
    assert "eventId" in raw["event"]["TestEvent"]


def test_cluster_messages_round_trip():
    messages = [
        IndexedEvents(session=SESSION, events=[IndexedEvent(idx=0, event=e) for e in _events()]),
        CatchUpRequest(session=SESSION, next_idx=12),
        ForwardedCommand(session=SESSION, origin="n2", command=PlaceInstance(model_card=CARD)),
    ]
    for message in messages:
        assert codec.decode(codec.encode(message, ClusterMessage), ClusterMessage) == message


def test_accepts_a_type_adapter_and_caches_adapters():
    adapter = TypeAdapter(Event)
    event = TestEvent(note="a")
    assert codec.decode(codec.encode(event, adapter), adapter) == event
    assert codec.adapter_for(Event) is codec.adapter_for(Event)


def test_json_helpers_round_trip():
    message = CatchUpRequest(session=SESSION, next_idx=1)
    data = codec.encode_json(message, ClusterMessage)
    assert b'"CatchUpRequest"' in data and b'"nextIdx"' in data
    assert codec.decode_json(data, ClusterMessage) == message
    with pytest.raises(CodecError):
        codec.decode_json(b"{not json", ClusterMessage)


def _frame(obj) -> bytes:
    return bytes([codec.FORMAT_VERSION]) + msgpack.packb(obj)


@pytest.mark.parametrize("data", [
    b"",
    b"\x01",
    b"\x01\xc1",  # reserved msgpack byte
    b"\x02" + msgpack.packb({"TestEvent": {}}),  # wrong version
    b"\x00" + msgpack.packb({"TestEvent": {}}),
    b"\x01" + msgpack.packb({"TestEvent": {}}) + b"\x00",  # trailing garbage
    b"\x01" + msgpack.packb({"TestEvent": {}})[:-1] + b"\x92",  # truncated array
    _frame({"TestEvent": {"note": "x", "bogus": 1}}),  # unknown field
    _frame({"NoSuchEvent": {}}),  # unknown tag
    _frame({"TestEvent": {}, "TaskDeleted": {}}),  # two tags
    _frame([1, 2, 3]),
    _frame({1: 2}),  # non-string key
    _frame({"TestEvent": {"note": 5}}),  # wrong field type
    "a string",
    None,
    12,
], ids=repr)
def test_bad_input_raises_codec_error(data):
    with pytest.raises(CodecError):
        codec.decode(data, Event)


def test_truncated_frames_raise_codec_error():
    data = codec.encode(IndexedEvent(idx=5, event=_events()[3]))
    for cut in range(len(data)):
        with pytest.raises(CodecError):
            codec.decode(data[:cut], IndexedEvent)


def test_encode_of_non_model_without_adapter_raises_codec_error():
    with pytest.raises(CodecError):
        codec.encode({"plain": "dict"})
    with pytest.raises(CodecError):
        codec.encode(object(), Event)


def test_fuzz_never_raises_anything_but_codec_error():
    rng = random.Random(1234)
    seeds = [codec.encode(IndexedEvent(idx=i, event=e)) for i, e in enumerate(_events())]
    for _ in range(3000):
        kind = rng.random()
        if kind < 0.3:
            data = bytes(rng.getrandbits(8) for _ in range(rng.randrange(0, 64)))
        else:  # mutate a valid frame so the fuzz reaches msgpack and pydantic
            data = bytearray(rng.choice(seeds))
            for _ in range(rng.randrange(1, 6)):
                data[rng.randrange(1, len(data))] = rng.getrandbits(8)
            data = bytes(data)
        for target in (IndexedEvent, Event, ClusterMessage):
            try:
                codec.decode(data, target)
            except CodecError:
                pass


def test_strict_models_still_decode_json_coerced_fields():
    from pydantic import ConfigDict

    from skulk.types.base import WireModel
    from skulk.types.tasks import TaskStatus

    class Strict(WireModel):
        model_config = ConfigDict(strict=True)
        when: datetime
        status: TaskStatus

    value = Strict(when=datetime(2024, 1, 2, tzinfo=timezone.utc), status=TaskStatus.Running)
    assert codec.decode(codec.encode(value), Strict) == value
