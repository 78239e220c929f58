"""The trio shell around the pure election core.

It ticks the core every 100 ms on trio's clock, feeds it received messages and connection
updates, and performs its outputs in order: broadcasts through `publish`, results on
`results`. All stepping is synchronous, so the core never sees two inputs at once.
"""

from __future__ import annotations

import math
from typing import Awaitable, Callable, Protocol

import trio

from skulk.election.core import (
    TICK_SECONDS,
    Broadcast,
    CommandSeen,
    Elected,
    Input,
    MessageReceived,
    Output,
    PeerConnectionChanged,
    Refused,
    Tick,
    start,
    step,
)
from skulk.faults import count, isolate
from skulk.types.election import ElectionMessage, ElectionResult
from skulk.types.ids import NodeId, SessionId


class ConnectionUpdate(Protocol):
    """One libp2p connection to a peer opened or closed."""

    @property
    def peer_id(self) -> NodeId: ...

    @property
    def connected(self) -> bool: ...


Outbox = trio.MemorySendChannel[Output]


class ElectionService:
    def __init__(
        self,
        node_id: NodeId,
        *,
        force_master: bool,
        candidate: bool = True,
        publish: Callable[[ElectionMessage], Awaitable[None]],
        messages: trio.MemoryReceiveChannel[ElectionMessage | MessageReceived],
        connections: trio.MemoryReceiveChannel[ConnectionUpdate],
        results: trio.MemorySendChannel[ElectionResult],
        initial_clock: int = 0,
    ) -> None:
        self.node_id = node_id
        # Pure and cheap: the session (self, initial_clock) is known before run() starts.
        self._state, self._startup = start(node_id, force_master=force_master, candidate=candidate,
                                           initial_clock=initial_clock)
        self._publish = publish
        self._messages = messages
        self._connections = connections
        self._results = results

    @property
    def current_session(self) -> SessionId:
        return self._state.current_session

    @property
    def is_master(self) -> bool:
        return self._state.is_master

    def note_command_seen(self) -> None:
        """Count one message seen on the commands topic (a tie-break between candidates)."""
        self._state, _ = step(self._state, CommandSeen())

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Emit the startup self-election, report started, then run until cancelled.

        Closed input channels only stop that feed. Read results promptly: outputs are
        performed in order, so a full results channel also holds back broadcasts.
        """
        startup, self._startup = self._startup, []
        for output in startup:
            await self._perform(output)
        # Unbounded so that stepping never waits; the core emits a handful of outputs per round.
        outbox, pending = trio.open_memory_channel[Output](math.inf)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._perform_outputs, pending)
            nursery.start_soon(self._tick, outbox)
            nursery.start_soon(self._receive_messages, outbox)
            nursery.start_soon(self._receive_connections, outbox)
            task_status.started()

    def _apply(self, event: Input, outbox: Outbox) -> None:
        self._state, outputs = step(self._state, event)
        for output in outputs:
            if isinstance(output, Refused):
                count(f"election.{output.reason}", f"status {output.message!r}"[:300])
            else:
                outbox.send_nowait(output)

    async def _tick(self, outbox: Outbox) -> None:
        # Deadlines on a fixed grid, so slow iterations don't stretch the campaign timeout.
        deadline = trio.current_time()
        while True:
            deadline += TICK_SECONDS
            await trio.sleep_until(deadline)
            with isolate("election.tick"):
                self._apply(Tick(), outbox)

    async def _receive_messages(self, outbox: Outbox) -> None:
        # The gossip bridge sends MessageReceived with the signer; a bare status has none.
        async for message in self._messages:
            with isolate("election.message"):
                event = message if isinstance(message, MessageReceived) else MessageReceived(message)
                self._apply(event, outbox)

    async def _receive_connections(self, outbox: Outbox) -> None:
        async for update in self._connections:
            with isolate("election.connection"):
                self._apply(PeerConnectionChanged(update.peer_id, update.connected), outbox)

    async def _perform_outputs(self, pending: trio.MemoryReceiveChannel[Output]) -> None:
        async for output in pending:
            await self._perform(output)

    async def _perform(self, output: Output) -> None:
        match output:
            case Broadcast(message=message):
                await self._publish(message)
            case Elected(result=result):
                await self._results.send(result)
