"""The restart scheduler: one pending restart at a time, and the node stopped after the delay."""

import trio

from skulk.node.restart import Restarter


def test_second_request_is_refused_and_the_node_scope_is_cancelled():
    async def main():
        restarter = Restarter({}, delay=0.01)
        with trio.CancelScope() as node_scope:
            async with trio.open_nursery() as nursery:
                await nursery.start(restarter.run, node_scope)
                assert restarter.request() is True and restarter.pending
                assert restarter.request() is False
                await trio.sleep_forever()
        assert node_scope.cancelled_caught
        restarter.abandon()  # don't let the force-exec watchdog fire in the test process
        assert not restarter.pending

    trio.run(main)
