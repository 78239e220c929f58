"""Three ElectionServices in one trio run, wired through an in-memory fake network."""

import math

import trio
import trio.testing

from skulk.election.core import PeerConnectionChanged
from skulk.election.service import ElectionService
from skulk.types.election import ElectionMessage, ElectionResult
from skulk.types.ids import NodeId, SessionId


class FakeNetwork:
    """Gossip between linked running nodes, with local loopback; connection events per link."""

    def __init__(self) -> None:
        self.links: set[frozenset[NodeId]] = set()
        self.inboxes: dict[NodeId, trio.MemorySendChannel[ElectionMessage]] = {}
        self.wires: dict[NodeId, trio.MemorySendChannel[PeerConnectionChanged]] = {}
        self.results: dict[NodeId, trio.MemoryReceiveChannel[ElectionResult]] = {}
        self.published = 0

    def add(self, node_id: NodeId, *, force_master: bool = False) -> ElectionService:
        inbox, messages = trio.open_memory_channel[ElectionMessage](math.inf)
        wire, connections = trio.open_memory_channel[PeerConnectionChanged](math.inf)
        results_in, self.results[node_id] = trio.open_memory_channel[ElectionResult](math.inf)
        self.inboxes[node_id], self.wires[node_id] = inbox, wire

        async def publish(message: ElectionMessage) -> None:
            self.published += 1
            inbox.send_nowait(message)  # gossip delivers our own messages too
            for peer in self.peers(node_id):
                self.inboxes[peer].send_nowait(message)

        return ElectionService(
            node_id,
            force_master=force_master,
            publish=publish,
            messages=messages,
            connections=connections,
            results=results_in,
        )

    def peers(self, node_id: NodeId) -> list[NodeId]:
        return [p for link in self.links if node_id in link for p in link if p != node_id]

    def connect(self, a: NodeId, b: NodeId) -> None:
        self.links.add(frozenset((a, b)))
        self.wires[a].send_nowait(PeerConnectionChanged(b, True))
        self.wires[b].send_nowait(PeerConnectionChanged(a, True))

    def kill(self, node_id: NodeId) -> None:
        for peer in self.peers(node_id):
            self.links.discard(frozenset((node_id, peer)))
            self.wires[peer].send_nowait(PeerConnectionChanged(node_id, False))

    def drain(self, node_id: NodeId) -> list[ElectionResult]:
        out = []
        while True:
            try:
                out.append(self.results[node_id].receive_nowait())
            except trio.WouldBlock:
                return out


async def start_node(nursery: trio.Nursery, service: ElectionService) -> trio.CancelScope:
    scope = trio.CancelScope()

    async def runner(task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        with scope:
            await service.run(task_status=task_status)

    await nursery.start(runner)
    return scope


def session(node_id: NodeId, clock: int) -> SessionId:
    return SessionId(master_node_id=node_id, election_clock=clock)


async def converge_and_fail_over() -> None:
    net = FakeNetwork()
    names = ["n1", "n2", "n3"]
    services = {name: net.add(name) for name in names}
    assert services["n1"].current_session == session("n1", 0)
    async with trio.open_nursery() as nursery:
        scopes = {}
        for name in names:
            scopes[name] = await start_node(nursery, services[name])
            # started() comes after the startup self-election was emitted
            assert net.drain(name) == [
                ElectionResult(session_id=session(name, 0), won_clock=0, is_new_master=False)
            ]
        await trio.sleep(0.35)  # off the tick grid on purpose
        for i, a in enumerate(names):
            for b in names[i + 1 :]:
                net.connect(a, b)
        # Settle 0.2 s, statuses at once, then a quiet tick: the round ends early.
        await trio.sleep(0.5)
        assert {s.current_session for s in services.values()} == {session("n3", 0)}
        assert [r.is_new_master for n in names for r in net.drain(n)] == [True, True, False]
        await trio.sleep(4)  # past the deadline rebroadcasts
        assert [r for n in names for r in net.drain(n)] == []
        assert services["n3"].is_master and not services["n1"].is_master

        services["n1"].note_command_seen()  # breaks the tie between n1 and n2
        killed_at = trio.current_time()
        scopes["n3"].cancel()
        net.kill("n3")
        first = await net.results["n1"].receive()
        elapsed = trio.current_time() - killed_at
        assert elapsed <= 0.5, elapsed  # settle 0.2 + quiet tick 0.1-0.2 + tick alignment
        await trio.sleep(0.5)
        second = net.drain("n2")
        assert first == ElectionResult(session_id=session("n1", 2), won_clock=2, is_new_master=True)
        assert second == [first]
        assert services["n1"].current_session == services["n2"].current_session == session("n1", 2)
        await trio.sleep(20)
        assert net.drain("n1") == net.drain("n2") == []  # settled: no more rounds
        nursery.cancel_scope.cancel()


def test_three_services_converge_and_fail_over_on_a_mock_clock():
    trio.run(converge_and_fail_over, clock=trio.testing.MockClock(autojump_threshold=0))


async def joiner_adopts_incumbent() -> None:
    net = FakeNetwork()
    services = {name: net.add(name) for name in ["a", "b", "z"]}
    async with trio.open_nursery() as nursery:
        for name in ["a", "b"]:
            await start_node(nursery, services[name])
        net.connect("a", "b")
        await trio.sleep(4)
        incumbent = services["a"].current_session
        assert incumbent == session("b", 0)
        await start_node(nursery, services["z"])
        net.connect("z", "a")
        net.connect("z", "b")
        await trio.sleep(4)
        assert {s.current_session for s in services.values()} == {incumbent}
        assert not any(r.is_new_master for r in net.drain("b"))  # the master never switched
        joined = ElectionResult(session_id=incumbent, won_clock=2, is_new_master=True)
        assert net.drain("z")[-1] == joined
        nursery.cancel_scope.cancel()


def test_joiner_adopts_the_incumbent_session_through_the_service():
    trio.run(joiner_adopts_incumbent, clock=trio.testing.MockClock(autojump_threshold=0))


def test_refused_statuses_are_counted_and_never_broadcast_or_elected():
    from skulk.election.events import MessageReceived
    from skulk.faults import FAULTS

    async def main():
        net = FakeNetwork()
        svc = net.add("a")
        async with trio.open_nursery() as nursery:
            await start_node(nursery, svc)
            published, before = net.published, FAULTS.counts["election.forged_sender"]
            forged = ElectionMessage(clock=5, seniority=1, commands_seen=0, proposed_session=session("ghost", 5))
            net.inboxes["a"].send_nowait(MessageReceived(forged, sender="rogue"))
            await trio.testing.wait_all_tasks_blocked()
            assert FAULTS.counts["election.forged_sender"] == before + 1
            assert net.published == published and svc.current_session == session("a", 0)
            nursery.cancel_scope.cancel()

    trio.run(main)
