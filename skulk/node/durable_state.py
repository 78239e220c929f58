"""The durable part of the replicated state on this node's disk, and the seed a cold master takes from it.

Every node keeps a copy of what must outlive the whole cluster (deployments, API keys, projects,
cluster config) in its home, rewritten atomically off the event loop whenever that part changes.
A master's first session in a fresh process (every node was stopped) starts from its own copy:
each node writes the same replicated state, so the copies differ only by how far each node had
followed the log, and the master's is the one at hand (no peer may hand the master keys).
Instances are not restored: the deployments are placed again by the reconciler.
"""

import json
import logging
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import trio

from skulk.atomic_files import write_file_atomically
from skulk.faults import count, isolate
from skulk.types.deployments import DeploymentStatus
from skulk.types.state import State

log = logging.getLogger(__name__)
FILE_NAME = "durable_state.json"
FORMAT = 1
CHECK_EVERY_S = 1.0
MAX_FILE_BYTES = 64 * 1024 * 1024  # far above any real cluster's; a bigger file is not ours to trust
KEPT = (DeploymentStatus.failed, DeploymentStatus.paused)  # a restart does not clear these


def durable_view(state: State) -> State:
    """Only what must survive every node stopping; live facts (nodes, instances, tasks) stay out."""
    return State(deployments=dict(state.deployments), api_keys=dict(state.api_keys), projects=dict(state.projects),
                 cluster_config=state.cluster_config, tracing_enabled=state.tracing_enabled,
                 auto_place_done=state.auto_place_done)


def cold_seed(saved: State) -> State:
    """The seed of a master whose cluster restarted from cold: its deployments start over as pending."""
    deployments = {
        k: d if d.status in KEPT else d.model_copy(update={
            "status": DeploymentStatus.pending, "reason": "restored after a cluster restart"})
        for k, d in saved.deployments.items()
    }
    return durable_view(saved).model_copy(update={"deployments": deployments})


def encode(state: State, saved_at: datetime) -> bytes:
    body = {"format": FORMAT, "saved_at": saved_at.isoformat(),
            "state": durable_view(state).model_dump(mode="json", by_alias=True)}
    return json.dumps(body, separators=(",", ":")).encode()


def decode(data: bytes) -> State | None:
    """The saved state, or None for a file of another format (it is then left alone)."""
    body = json.loads(data)
    if not isinstance(body, dict) or body.get("format") != FORMAT:
        return None
    return State.model_validate(body["state"])


def is_empty(state: State) -> bool:
    return not (state.deployments or state.api_keys or state.projects or state.cluster_config)


class DurableState:
    """Writes this node's copy when the durable part changes; reads it back for a cold master."""

    def __init__(self, path: Path, state: Callable[[], State]):
        self.path = path
        self._state = state
        self._last: bytes | None = None
        self._last_ids: tuple | None = None
        self.counters = {"durable_state_writes": 0}

    def load(self) -> State | None:
        try:
            if self.path.stat().st_size > MAX_FILE_BYTES:
                count("durable_state.too_big", str(self.path))
                return None
            return decode(self.path.read_bytes())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:  # a damaged copy: start empty rather than not at all
            count("durable_state.unreadable", f"{self.path}: {exc}")
            return None

    def seed_for_cold_master(self, current: State) -> State | None:
        """A seed for this node's first master session when it knows nothing yet, else None."""
        if current.last_event_applied_idx >= 0 or not is_empty(current):
            return None
        saved = self.load()
        if saved is None or is_empty(saved):
            return None
        log.info("seeding the cluster from %s: %d deployments, %d keys, %d projects", self.path,
                 len(saved.deployments), len(saved.api_keys), len(saved.projects))
        return cold_seed(saved)

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        while True:
            await trio.sleep(CHECK_EVERY_S)
            with isolate("durable_state.write"):
                await self.save_if_changed()

    async def save_if_changed(self) -> bool:
        state = self._state()
        if state.last_event_applied_idx < 0:
            return False  # not following a session yet: an empty view must never replace a saved copy
        ids = (id(state.deployments), id(state.api_keys), id(state.projects), id(state.cluster_config),
               state.tracing_enabled, state.auto_place_done)
        if ids == self._last_ids:
            return False
        self._last_ids = ids
        data = durable_view(state).model_dump_json(by_alias=True).encode()
        if data == self._last:
            return False
        if self._last is None and is_empty(state) and not is_empty(self.load() or State()):
            self._last = data  # a master without a copy started the cluster: keep ours until a real change
            return False
        payload = encode(state, datetime.now(timezone.utc))
        await trio.to_thread.run_sync(write_file_atomically, self.path, payload)  # 0600: it holds key hashes
        self._last = data
        self.counters["durable_state_writes"] += 1
        return True
