"""Webhook sender in the master's shell: derive notifications from committed batches, POST them.

Off the critical path: the master only derives (pure) and puts each notification on a bounded
channel (full: dropped and counted); one task delivers them in order with bounded retries.
"""

import logging
from collections.abc import Callable
from datetime import datetime, timezone
from urllib.parse import urlsplit

import httpx
import trio

from skulk.faults import count, isolate
from skulk.master.notifications import Notification, notifications_for_batch
from skulk.state.apply import apply
from skulk.types.events import IndexedEvent
from skulk.types.state import State

log = logging.getLogger(__name__)

QUEUE_LIMIT = 256  # notifications waiting for delivery; past it new ones are dropped
ATTEMPTS = 4  # per notification: the first try and three retries
BACKOFF_S = 1.0  # doubled after each failed attempt
TIMEOUT_S = 5.0  # per attempt, connect to last byte
SLACK_HOSTS = frozenset({"hooks.slack.com"})


class NotifyCounts:
    """Process-wide outcome counts, shown in /metrics as skulk_notifications{outcome}."""

    OUTCOMES = ("sent", "failed", "dropped", "retried")

    def __init__(self) -> None:
        self._n = dict.fromkeys(self.OUTCOMES, 0)

    def add(self, outcome: str) -> None:
        self._n[outcome] += 1

    def snapshot(self) -> dict[str, int]:
        return dict(self._n)


NOTIFY_COUNTS = NotifyCounts()


def payload_for(url: str, note: Notification) -> dict:
    """Slack's incoming webhooks take {"text"}; anything else gets the whole notification."""
    if (urlsplit(url).hostname or "").lower() in SLACK_HOSTS:
        return {"text": f"[{note.event}] {note.message}"}
    return note.body()


def _retryable(status: int) -> bool:
    return status >= 500 or status in (408, 429)


class Notifier:
    """One per master session; `webhook_url` is read live (PUT /config changes it)."""

    def __init__(self, webhook_url: Callable[[], str], *, queue_limit: int = QUEUE_LIMIT,
                 attempts: int = ATTEMPTS, backoff_s: float = BACKOFF_S, timeout_s: float = TIMEOUT_S,
                 counts: NotifyCounts = NOTIFY_COUNTS):
        self._url = webhook_url
        self._attempts, self._backoff, self._timeout = attempts, backoff_s, timeout_s
        self.counts = counts
        self._send, self._recv = trio.open_memory_channel(queue_limit)
        self._lost: frozenset[str] = frozenset()

    def observe(self, before: State, indexed: list[IndexedEvent], after: State) -> None:
        """Called by the master after each commit; never raises, never waits."""
        with isolate("notify.derive"):
            if not self._url():
                return  # off: nothing derived, nothing remembered
            notes, self._lost = notifications_for_batch(
                before, indexed, now=datetime.now(timezone.utc), lost=self._lost, apply=apply)
            for note in notes:
                self.enqueue(note)

    def enqueue(self, note: Notification) -> None:
        try:
            self._send.send_nowait(note)
        except trio.WouldBlock:
            self.counts.add("dropped")
            count("notify.dropped", f"{note.event}: {QUEUE_LIMIT} notifications already waiting")
        except trio.ClosedResourceError:
            self.counts.add("dropped")

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        async with httpx.AsyncClient(timeout=self._timeout, trust_env=False) as client:
            task_status.started()
            async with self._recv:
                async for note in self._recv:
                    with isolate("notify.deliver"):
                        await self.deliver(client, note)

    async def deliver(self, client: httpx.AsyncClient, note: Notification) -> bool:
        """POST one notification with bounded retries; True once the receiver took it."""
        delay = self._backoff
        for attempt in range(self._attempts):
            url = self._url()
            if not url:
                return False  # turned off meanwhile
            problem = await self._post(client, url, note)
            if problem is None:
                self.counts.add("sent")
                return True
            if attempt + 1 < self._attempts and problem[1]:
                self.counts.add("retried")
                await trio.sleep(delay)
                delay *= 2
                continue
            self.counts.add("failed")
            count("notify.failed", f"{note.event} to {urlsplit(url).hostname}: {problem[0]}")
            return False
        return False

    async def _post(self, client: httpx.AsyncClient, url: str, note: Notification) -> tuple[str, bool] | None:
        """None on success, else (why, whether another attempt may help)."""
        try:
            with trio.fail_after(self._timeout):  # httpx's own timeouts are per phase
                resp = await client.post(url, json=payload_for(url, note))
        except trio.TooSlowError:
            return f"no answer within {self._timeout:g} s", True
        except httpx.HTTPError as exc:
            return str(exc) or type(exc).__name__, True
        if 200 <= resp.status_code < 300:
            return None
        return f"HTTP {resp.status_code}", _retryable(resp.status_code)
