"""The gateway switch: with `api.gateway_enabled` false every inference route answers 503 "gateway
disabled" in its API's error shape, while admin, state and probe routes keep working.

It is cluster config (PUT /config on any node reaches every node) and live: read per request.
"""

import re
from collections.abc import Awaitable, Callable
from typing import Any

from skulk.api.body_limit import refusal
from skulk.faults import count

Scope = dict[str, Any]
ASGIApp = Callable[[Scope, Callable, Callable], Awaitable[None]]

RETRY_AFTER_S = 30  # an operator switched it off: not a matter of seconds
# POST routes that generate or embed (Ollama's show/tags/ps are metadata and stay open).
_INFERENCE = re.compile(r"^/(v1/(chat/completions|completions|responses|messages|embeddings)"
                        r"|bench/chat/completions"
                        r"|ollama/(api/|api/api/|api/v1/)?(chat|generate|embed|embeddings))$")


def is_gated(method: str, path: str) -> bool:
    return method == "POST" and bool(_INFERENCE.match(path))


class GatewayMiddleware:
    def __init__(self, app: ASGIApp, enabled: Callable[[], bool]):
        self.app = app
        self.enabled = enabled  # read per request, so PUT /config applies to the next one

    async def __call__(self, scope: Scope, receive, send) -> None:
        if scope["type"] == "http" and is_gated(scope.get("method", ""), scope.get("path", "")) and not self.enabled():
            count("api.gateway_disabled", scope.get("path", "")[:64])
            response = refusal(scope["path"], 503, "gateway disabled: this cluster's inference routes are switched "
                               "off (api.gateway_enabled)", "gateway_disabled")
            response.headers["Retry-After"] = str(RETRY_AFTER_S)
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)
