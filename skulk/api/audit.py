"""The audit trail: every admin action this node served (method, route template, ids in the path,
status, key id, node, time), in a bounded JSONL file under the node's home (mode 0600).

Never bodies, headers or key values. GET /v1/audit merges every node's file, newest first.
"""

import json
import logging
import os
from collections import deque
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from skulk.api.access_policy import level_for
from skulk.api.auth import principal_of
from skulk.faults import isolate
from skulk.api.asgi_status import StatusRecordingSend
from starlette.requests import Request

log = logging.getLogger(__name__)
KEEP = 2_000  # entries per node; the file is cut back to this when it doubles
PARAM_LIMIT = 128
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class AuditLog:
    def __init__(self, path: Path | None, node_id: str, keep: int = KEEP):
        self.path = path
        self.node_id = node_id
        self.keep = keep
        self._recent: deque[dict] = deque(maxlen=keep)
        self._lines_on_disk = 0
        if path is not None and path.exists():
            with isolate("audit.read"):
                self._recent.extend(self._read_file())
                self._lines_on_disk = len(self._recent)

    def _read_file(self) -> list[dict]:
        assert self.path is not None
        entries = []
        for line in self.path.read_text(encoding="utf-8", errors="replace").splitlines()[-self.keep:]:
            try:
                entry = json.loads(line)
            except ValueError:
                continue  # a torn last line after a crash
            if isinstance(entry, dict):
                entries.append(entry)
        return entries

    def record(self, entry: dict[str, Any]) -> None:
        self._recent.append(entry)
        if self.path is None:
            return
        with isolate("audit.write"):
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            with os.fdopen(fd, "a", encoding="utf-8") as f:
                f.write(json.dumps(entry, separators=(",", ":")) + "\n")
            self._lines_on_disk += 1
            if self._lines_on_disk >= 2 * self.keep:
                self._compact()

    def _compact(self) -> None:
        assert self.path is not None
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.writelines(json.dumps(e, separators=(",", ":")) + "\n" for e in self._recent)
        os.replace(tmp, self.path)
        self._lines_on_disk = len(self._recent)

    def newest(self, limit: int) -> list[dict]:
        return list(reversed(self._recent))[:limit]


def audit_entry(scope: dict, status: int, node_id: str, key_id: str | None) -> dict[str, Any]:
    route = getattr(scope.get("route"), "path", None) or "unmatched"
    params = {k: str(v)[:PARAM_LIMIT] for k, v in (scope.get("path_params") or {}).items()}
    return {"at": datetime.now(timezone.utc).isoformat(timespec="microseconds"), "node_id": node_id, "key_id": key_id,
            "method": scope.get("method", ""), "route": route, "params": params, "status": status}


class AuditMiddleware:
    """Records every admin-level request that may change something, once its status is known.
    Placed inside the access middleware: refused requests (401/403) never get this far."""

    def __init__(self, app, log_: AuditLog):
        self.app = app
        self.log = log_

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope.get("method") in READ_METHODS:
            await self.app(scope, receive, send)
            return
        if level_for(scope.get("method", ""), scope.get("path", ""), "") != "admin":
            await self.app(scope, receive, send)
            return
        recorder = StatusRecordingSend(send)
        try:
            await self.app(scope, receive, recorder)
        finally:
            status = recorder.status
            principal = principal_of(Request(scope))
            self.log.record(audit_entry(scope, status, self.log.node_id,
                                        principal.key_id if principal is not None else None))
