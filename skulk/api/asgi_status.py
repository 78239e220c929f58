"""The status an ASGI app answered with, for middlewares that record it after the fact."""

from typing import Any


class StatusRecordingSend:
    """Wraps `send`; `status` is 500 (what the client gets) until a response starts."""

    def __init__(self, send: Any):
        self._send = send
        self.status = 500

    async def __call__(self, message: dict) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
        await self._send(message)
