"""The first admin key: a configured one is registered cluster-wide (its salted hash), and a node
whose API is reachable from the network makes one when the cluster has none.

The decision is pure (`bootstrap_action`); the shell polls this node's replica, so a key lost
with a fresh session (no master log) is registered again.
"""

import logging
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

import trio

from skulk.state.api_keys import KeyUsage, KeyVerifier
from skulk.atomic_files import write_file_atomically
from skulk.faults import isolate
from skulk.types import commands as cmd
from skulk.types.access import ApiKeyRecord, hash_key, key_id_hint, new_key, new_key_id, new_salt

log = logging.getLogger(__name__)
Action = Literal["register", "create"] | None
POLL_S = 2.0
SETTLE_S = 3.0  # after joining a session, let the replica catch up before judging it
ADMIN_KEY_FILE = "admin.key"
TOUCH_EVERY_S = 30.0  # last-used times are for people; one command a while is enough


def bootstrap_action(records: Mapping[str, ApiKeyRecord], configured: str | None, loopback: bool,
                     matches: Callable[[str], bool]) -> Action:
    """What to do now: register the configured key, create an admin key, or nothing."""
    if configured is not None:
        return None if matches(configured) else "register"
    if not loopback and not any(r.role == "admin" for r in records.values()):
        return "create"
    return None


def configured_key(auth: Any, home: Path) -> str | None:
    """auth.admin_key, else the text of auth.admin_key_file, else a key this node made earlier."""
    if auth is not None and getattr(auth, "admin_key", None):
        return auth.admin_key
    path = getattr(auth, "admin_key_file", None)
    candidates = [Path(path).expanduser()] if path else []
    candidates.append(home / ADMIN_KEY_FILE)
    for candidate in candidates:
        try:
            text = candidate.read_text(encoding="utf-8").strip()
        except OSError:
            continue
        if text:
            return text
    return None


def admin_record(key: str, now: datetime, name: str) -> ApiKeyRecord:
    key_id = key_id_hint(key) or f"cfg-{new_key_id()}"  # "cfg-": a free-form key, tried by hash
    salt = new_salt()
    return ApiKeyRecord(id=key_id, name=name, role="admin", created_at=now, salt=salt,
                        key_hash=hash_key(key, salt))


class AccessBootstrap:
    def __init__(self, port: Any, *, home: Path, auth: Any, loopback: bool, node_name: str,
                 usage: KeyUsage | None = None):
        self.port = port  # the ClusterFacade: state, session, send_command
        self.home = home
        self.auth = auth
        self.loopback = loopback
        self.node_name = node_name
        self.verifier = KeyVerifier()
        self.usage = usage  # the API's last-used times of keys, sent every TOUCH_EVERY_S
        self._last_touch = 0.0

    def _matches(self, key: str) -> bool:
        return self.verifier.verify(key, self.port.state.api_keys, datetime.now(timezone.utc)) is not None

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        seen_session = None
        while True:
            session = self.port.session
            if session is not None and session != seen_session:
                seen_session = session
                await trio.sleep(SETTLE_S)
            elif session is not None:
                with isolate("access.bootstrap"):
                    await self.ensure()
                with isolate("access.touch"):
                    await self.touch()
            await trio.sleep(POLL_S)

    async def ensure(self) -> None:
        key = configured_key(self.auth, self.home)
        action = await trio.to_thread.run_sync(
            bootstrap_action, self.port.state.api_keys, key, self.loopback, self._matches)
        now = datetime.now(timezone.utc)
        if action == "register" and key is not None:
            record = await trio.to_thread.run_sync(admin_record, key, now, f"admin ({self.node_name})")
            await self.port.send_command(cmd.CreateApiKey(record=record))
            log.info("registered the configured admin key with the cluster as %s", record.id)
        elif action == "create":
            await self._create(now)

    async def touch(self) -> None:
        if self.usage is None or trio.current_time() - self._last_touch < TOUCH_EVERY_S:
            return
        self._last_touch = trio.current_time()
        last_used = self.usage.take()
        if last_used:
            await self.port.send_command(cmd.TouchApiKeys(last_used=last_used))

    async def _create(self, now: datetime) -> None:
        key_id = new_key_id()
        key = new_key(key_id)
        record = await trio.to_thread.run_sync(admin_record, key, now, f"bootstrap admin ({self.node_name})")
        await self.port.send_command(cmd.CreateApiKey(record=record, only_if_no_admin=True))
        with trio.move_on_after(10):
            while record.id not in self.port.state.api_keys:
                await trio.sleep(0.1)
        if record.id not in self.port.state.api_keys:
            return  # another node's admin key won; nothing to write
        path = self.home / ADMIN_KEY_FILE
        write_file_atomically(path, key + "\n", mode=0o600)
        log.warning("the API listens beyond loopback and the cluster had no admin key: created one "
                    "in %s (mode 0600)", path)
