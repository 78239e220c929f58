"""Server-sent events: the few line shapes every streaming flavour writes, and the response."""

import json
from collections.abc import AsyncIterator
from typing import Any

from starlette.responses import StreamingResponse

from skulk.api.generation import Generation

SSE_HEADERS = {"Cache-Control": "no-cache", "Connection": "close", "X-Accel-Buffering": "no"}
DONE = "data: [DONE]\n\n"


def _json(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def comment(text: str) -> str:
    return f": {text}\n\n"


def data(obj: Any) -> str:
    return f"data: {_json(obj)}\n\n"


def event(name: str, obj: Any) -> str:
    return f"event: {name}\ndata: {_json(obj)}\n\n"


def stats_dict(gen: Generation) -> dict[str, Any] | None:
    return gen.stats.model_dump() if gen.stats is not None else None


def stats_comment(gen: Generation) -> str:
    stats = stats_dict(gen)
    return comment(f"generation_stats {_json(stats)}") if stats is not None else ""


def sse_response(body: AsyncIterator[str], gen: Generation) -> StreamingResponse:
    """Stream `body`; however it ends (done, error, client gone), the generation is closed."""

    async def guarded() -> AsyncIterator[str]:
        try:
            async for piece in body:
                if piece:
                    yield piece
        finally:
            await gen.close()

    return StreamingResponse(guarded(), media_type="text/event-stream", headers=SSE_HEADERS)
