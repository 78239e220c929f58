"""The webhook sender against a real local receiver: retries, failures counted, never blocking."""

from datetime import datetime, timezone

import httpx
import trio

from tests.webhook_receiver import webhook_receiver
from skulk.master.notifications import Notification
from skulk.master.notifier import Notifier, NotifyCounts, payload_for
from skulk.types import events as ev
from skulk.types.deployments import Deployment, DeploymentStatus as DS
from skulk.types.state import State

NOTE = Notification("node.lost", "node n2 was lost (no heartbeat)", datetime(2026, 1, 1, tzinfo=timezone.utc),
                    node_id="n2")


def _notifier(url: str, **kw) -> tuple[Notifier, NotifyCounts]:
    counts = NotifyCounts()
    kw = {"attempts": 3, "backoff_s": 0.05, "timeout_s": 2.0, **kw}
    return Notifier(lambda: url, counts=counts, **kw), counts


def test_shapes() -> None:
    assert payload_for("https://hooks.slack.com/services/T/B/X", NOTE) == {"text": "[node.lost] " + NOTE.message}
    body = payload_for("http://127.0.0.1:9/hook", NOTE)
    assert set(body) == {"event", "deployment_id", "model_id", "node_id", "message", "at"}
    assert body["event"] == "node.lost" and body["node_id"] == "n2"


def test_retry_then_success() -> None:
    with webhook_receiver() as rx:
        rx.fail_first = 2
        notifier, counts = _notifier(rx.url)

        async def main() -> bool:
            async with httpx.AsyncClient(trust_env=False) as client:
                return await notifier.deliver(client, NOTE)

        assert trio.run(main)
        assert rx.attempts == 3 and rx.kinds() == ["node.lost"]
        assert counts.snapshot() == {"sent": 1, "failed": 0, "dropped": 0, "retried": 2}


def test_failure_is_counted_and_client_errors_are_not_retried() -> None:
    with webhook_receiver() as rx:
        rx.fail_first = 99
        notifier, counts = _notifier(rx.url)

        async def main() -> None:
            async with httpx.AsyncClient(trust_env=False) as client:
                assert not await notifier.deliver(client, NOTE)
                rx.fail_first, rx.status = 0, 404
                assert not await notifier.deliver(client, NOTE)

        trio.run(main)
        assert rx.attempts == 3 + 1  # three tries for the 500s, one for the 404
        assert counts.snapshot()["failed"] == 2 and counts.snapshot()["sent"] == 0


def test_a_hanging_receiver_blocks_nothing() -> None:
    """The master's observe() returns at once; the queue bound drops the excess; delivery times out."""
    with webhook_receiver() as rx:
        rx.hang.set()
        notifier, counts = _notifier(rx.url, queue_limit=2, attempts=2, timeout_s=0.3)
        before = State(deployments={"d1": Deployment(deployment_id="d1", model_id="m", status=DS.starting)})
        ready = ev.IndexedEvent(idx=0, event=ev.DeploymentStatusChanged(deployment_id="d1", status=DS.ready))
        from skulk.state.apply import apply

        async def main() -> None:
            async with trio.open_nursery() as nursery:
                await nursery.start(notifier.run)
                t0 = trio.current_time()
                for _ in range(5):
                    before_i = before.model_copy(update={"last_event_applied_idx": -1})
                    notifier.observe(before_i, [ready], apply(before_i, ready))
                assert trio.current_time() - t0 < 0.1  # never waits for the receiver
                with trio.fail_after(10):
                    while counts.snapshot()["failed"] < 2:  # the two queued ones, each timed out twice
                        await trio.sleep(0.05)
                nursery.cancel_scope.cancel()

        trio.run(main)
        snap = counts.snapshot()
        # one taken by the sender at once, two queued, the rest dropped
        assert snap["dropped"] >= 2 and snap["sent"] == 0 and snap["failed"] >= 2


def test_off_when_no_url() -> None:
    notifier, counts = _notifier("")
    ie = ev.IndexedEvent(idx=0, event=ev.NodeTimedOut(node_id="n1"))
    notifier.observe(State(), [ie], State())
    assert counts.snapshot() == {"sent": 0, "failed": 0, "dropped": 0, "retried": 0}
