"""The router feeds the API-side disk log, recreates it on session change, and GET /events reads it."""

import json
from types import SimpleNamespace

import trio
from starlette.requests import Request

from skulk.api.routes_cluster import EVENT_LOG_MODE_HEADER, get_events
from skulk.node.facade import ClusterFacade
from skulk.routing.service import EventRouter
from skulk.store.api_event_log import ApiEventLog
from skulk.store.event_log import archive_paths
from skulk.types.events import IndexedEvent, TestEvent
from skulk.types.ids import SessionId
from skulk.types.wire import IndexedEvents
from tests.store.test_disk_event_log import FakeDisk, read_archive

S1 = SessionId(master_node_id="m1", election_clock=1)
S2 = SessionId(master_node_id="m2", election_clock=2)


async def no_send(peer, msg) -> None:
    return None


def batch(session: SessionId, start: int, stop: int, tag: str) -> IndexedEvents:
    return IndexedEvents(session=session, events=[
        IndexedEvent(idx=i, event=TestEvent(event_id=f"{tag}{i}", note=f"{tag}{i}")) for i in range(start, stop)])


def notes(events: list[IndexedEvent]) -> list[str]:
    return [ie.event.note for ie in events]


def make_router(tmp_path) -> EventRouter:
    return EventRouter("me", no_send, api_log=ApiEventLog(tmp_path / "api", disk_usage=FakeDisk()))


def facade_for(router: EventRouter) -> ClusterFacade:
    return ClusterFacade(node_id="me", friendly_name="me", router=router, sessions=None, telemetry=None,
                         messenger=None, streams=None, catalog=None, liveness_timeout=1.0, note_command=None,
                         counters=None, net=None)


def test_a_session_change_archives_the_old_log_and_starts_a_fresh_one(tmp_path):
    router = make_router(tmp_path)

    async def main():
        router.set_session(S1)
        router.on_indexed(batch(S1, 0, 5, "a"))
        assert notes(await router.read_history()) == ["a0", "a1", "a2", "a3", "a4"]
        router.set_session(S2)
        router.on_indexed(batch(S2, 0, 2, "b"))  # waits in memory until the new file is open
        router.on_indexed(batch(S1, 5, 6, "a"))  # the old session's: dropped
        assert notes(await router.read_history()) == ["b0", "b1"]
        assert router.history == [] and router.history_length == 2

    trio.run(main)
    archives = archive_paths(tmp_path / "api")
    assert len(archives) == 1 and notes(read_archive(archives[0])) == ["a0", "a1", "a2", "a3", "a4"]


def test_the_router_loop_reopens_the_log_without_a_read(tmp_path):
    router = make_router(tmp_path)

    async def main():
        async with trio.open_nursery() as nursery:
            await nursery.start(router.run)
            router.set_session(S1)
            router.on_indexed(batch(S1, 0, 3, "a"))  # wait in memory while the loop reopens the file
            with trio.fail_after(10):
                while router.history_length < 3:
                    await trio.sleep(0.01)
            router.set_session(S2)
            with trio.fail_after(10):
                while not archive_paths(tmp_path / "api"):
                    await trio.sleep(0.01)
            router.on_indexed(batch(S2, 0, 1, "b"))
            assert router.history_length == 1  # written straight to the new file
            nursery.cancel_scope.cancel()

    trio.run(main)


def call_events(port) -> tuple[list, str]:
    request = Request({"type": "http", "query_string": b"", "app": SimpleNamespace(state=SimpleNamespace(cluster=port))})

    async def body_of_stream():
        resp = await get_events(request)
        return b"".join([chunk async for chunk in resp.body_iterator]), resp.headers[EVENT_LOG_MODE_HEADER]

    body, mode = trio.run(body_of_stream)  # /events streams its array
    return json.loads(body), mode


def test_get_events_serves_the_disk_log(tmp_path):
    router = make_router(tmp_path)
    router.set_session(S1)
    router.on_indexed(batch(S1, 0, 3, "a"))
    body, mode = call_events(facade_for(router))
    assert mode == "persisting"
    assert body == [{"TestEvent": {"eventId": f"a{i}", "note": f"a{i}"}} for i in range(3)]


def test_without_a_log_dir_events_stay_in_memory():
    router = EventRouter("me", no_send)
    router.set_session(S1)
    router.on_indexed(batch(S1, 0, 3, "a"))
    assert notes(router.history) == ["a0", "a1", "a2"] and router.history_length == 3
    body, mode = call_events(facade_for(router))
    assert [next(iter(e.values()))["note"] for e in body] == ["a0", "a1", "a2"] and mode == "disabled"
