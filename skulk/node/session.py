"""SessionManager: turns election results into a running master (or not) and a fresh router."""

import logging
from collections.abc import Callable
from datetime import datetime, timezone

import trio

from skulk.faults import isolate
from skulk.master.service import MasterService
from skulk.routing.service import EventRouter
from skulk.state.seed import seed_state_for_new_session
from skulk.types.election import ElectionResult
from skulk.types.ids import NodeId, SessionId
from skulk.types.state import State

log = logging.getLogger(__name__)

MasterFactory = Callable[[SessionId, State | None], MasterService]
SessionListener = Callable[[SessionId, SessionId | None], None]


class SessionManager:
    def __init__(self, node_id: NodeId, router: EventRouter, make_master: MasterFactory):
        self.node_id = node_id
        self.router = router
        self._make_master = make_master
        self.master: MasterService | None = None
        self._master_scope: trio.CancelScope | None = None
        self.listeners: list[SessionListener] = []
        self.elections = 0
        self.ready = trio.Event()
        self.master_changed_at: float | None = None  # trio time of the last change from one session to another

    @property
    def session(self) -> SessionId | None:
        return self.router.session

    @property
    def is_master(self) -> bool:
        return self.master is not None

    async def run(self, results: trio.MemoryReceiveChannel, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            task_status.started()
            async for result in results:
                with isolate("session.result"):  # a master that fails to start ends only that result
                    await self._on_result(nursery, result)

    async def _on_result(self, nursery: trio.Nursery, result: ElectionResult) -> None:
        self.elections += 1
        new, old = result.session_id, self.router.session
        if new == old:
            return
        log.info("session %s:%d (master %s)", new.master_node_id[-8:], new.election_clock,
                 "self" if new.master_node_id == self.node_id else new.master_node_id)
        seed = None
        if old is not None and new.master_node_id == self.node_id:
            seed = seed_state_for_new_session(self.router.state, datetime.now(timezone.utc))
        self._stop_master()
        self.router.set_session(new)
        if old is not None:
            self.master_changed_at = trio.current_time()
        if new.master_node_id == self.node_id:
            with isolate("session.master_start"):  # the session still changes; listeners still hear of it
                await nursery.start(self._run_master, self._make_master(new, seed))
        for listener in list(self.listeners):
            with isolate("session.listener"):
                listener(new, old)
        self.ready.set()

    def _stop_master(self) -> None:
        if self._master_scope is not None:
            self._master_scope.cancel()
        self._master_scope = None
        self.master = None

    async def _run_master(self, master: MasterService, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        with trio.CancelScope() as scope:
            self._master_scope = scope
            self.master = master
            try:
                with isolate("session.master"):  # counted; the node lives on until the next election
                    await master.run(task_status=task_status)
            finally:
                if self.master is master:
                    self.master = None
