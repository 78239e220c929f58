"""Node service loops guard each item: a failing listener, master start, janitor pass or config
apply is counted (skulk.faults) and the loop goes on with the next one."""

import trio
import trio.testing

from skulk.faults import FAULTS
from skulk.node.config_sync import ConfigSync
from skulk.node.janitor import run_janitor
from skulk.node.session import SessionManager
from skulk.routing.service import EventRouter
from skulk.types.election import ElectionResult
from skulk.types.ids import SessionId
from skulk.types.state import State


def delta(before, kind):
    return FAULTS.counts[kind] - before.get(kind, 0)


class BrokenMaster:
    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED):
        raise RuntimeError("master bug")


async def no_send(peer, msg):
    pass


def result(master, clock):
    return ElectionResult(session_id=SessionId(master_node_id=master, election_clock=clock), won_clock=clock,
                          is_new_master=True)


def test_a_master_that_fails_to_start_and_a_raising_listener_end_only_their_result():
    before = FAULTS.snapshot()
    router = EventRouter("n1", no_send)
    sessions = SessionManager("n1", router, lambda session, seed: BrokenMaster())
    heard = []

    def bad_listener(new, old):
        raise ValueError("listener bug")
    sessions.listeners.extend([bad_listener, lambda new, old: heard.append(new.election_clock)])

    async def main():
        send, recv = trio.open_memory_channel(10)
        async with trio.open_nursery() as nursery:
            await nursery.start(sessions.run, recv)
            await send.send(result("n1", 1))  # we are master: the master's run() raises
            await send.send(result("n0", 2))  # the next result is still handled
            await trio.testing.wait_all_tasks_blocked()
            nursery.cancel_scope.cancel()

    trio.run(main)
    assert heard == [1, 2] and router.session.election_clock == 2 and sessions.master is None
    assert delta(before, "session.master_start") == 1
    assert delta(before, "session.listener") == 2


def test_a_failing_janitor_pass_is_counted_and_the_next_pass_runs():
    before = FAULTS.snapshot()
    passes = []

    def prune():
        passes.append(len(passes))
        if len(passes) == 1:
            raise PermissionError("denied")
        return []

    async def main():
        async with trio.open_nursery() as nursery:
            await nursery.start(lambda task_status: run_janitor("test janitor", prune, first_delay=0.01,
                                                                interval=0.01, task_status=task_status))
            with trio.fail_after(10):
                while len(passes) < 3:
                    await trio.sleep(0.01)  # prune runs in a thread: real time, bounded
            nursery.cancel_scope.cancel()

    trio.run(main)
    assert passes[:3] == [0, 1, 2] and delta(before, "janitor.pass_failed") == 1


class Router:
    def __init__(self):
        self.state = State()
        self.changed = trio.Event()

    def change(self, config):
        self.state = State(cluster_config=config)
        self.changed.set()
        self.changed = trio.Event()


def test_a_config_apply_that_raises_is_counted_and_the_next_config_applies(tmp_path):
    before = FAULTS.snapshot()
    router, applied = Router(), []

    def apply_live(settings):
        applied.append(settings.tracing.retention_days)
        if len(applied) == 1:
            raise RuntimeError("live apply bug")

    sync = ConfigSync(router, apply_live, path=lambda: tmp_path / "skulk.yaml")

    async def main():
        async with trio.open_nursery() as nursery:
            await nursery.start(sync.run)
            router.change({"tracing": {"retention_days": 3}})
            await trio.testing.wait_all_tasks_blocked()
            router.change({"tracing": {"retention_days": 4}})
            await trio.testing.wait_all_tasks_blocked()
            nursery.cancel_scope.cancel()

    trio.run(main)
    assert applied == [3, 4] and delta(before, "config_sync.check") == 1
