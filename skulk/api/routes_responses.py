"""OpenAI Responses API: POST /v1/responses, whole or as typed SSE events.

Stream: response.created, response.in_progress, then per output item output_item.added,
content_part.added / output_text.delta... / output_text.done / content_part.done (messages),
reasoning_summary_part/text events (reasoning), function_call_arguments.delta/done (function
calls), output_item.done; last response.completed (or response.incomplete when cut by
max_output_tokens) carrying usage. A failure after the stream started is `event: error`.
"""

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from skulk.api.failover import FailoverGeneration
from skulk.api.generation import GenerationFailed
from skulk.api.output import Finish, ParsedOutput, collect_unless_disconnected
from skulk.api.responses_models import (ResponsesRequest, call_item, message_item, reasoning_item,
                                        response_object, to_task_params)
from skulk.api.routing import RouteSpec
from skulk.api.sse import comment, event, sse_response
from skulk.api.tool_calls import Piece, new_id
from skulk.api.limits import FieldNames
from skulk.api.validation import check_request, check_servable, chunk_error, read_request
from skulk.api.routes_routes import resolve_request


@dataclass
class _OpenItem:
    kind: str  # message | reasoning
    item_id: str
    index: int
    parts: list[str] = field(default_factory=list)


@dataclass
class _Events:
    """Turns pieces of output into numbered Responses events, one open output item at a time."""

    req: ResponsesRequest
    resp_id: str
    created: int
    seq: int = 0
    output: list[dict[str, Any]] = field(default_factory=list)
    open: _OpenItem | None = None

    def ev(self, kind: str, **fields: Any) -> str:
        self.seq += 1
        return event(kind, {"type": kind, "sequence_number": self.seq - 1, **fields})

    def response(self, status: str, finish: Finish | None = None) -> dict[str, Any]:
        return response_object(self.req, self.resp_id, self.created, status=status, output=self.output,
                               usage=finish.usage if finish else None,
                               incomplete=status == "incomplete")

    def piece(self, p: Piece) -> list[str]:
        kind = "message" if p.kind == "text" else "reasoning"
        out = [] if self.open is not None and self.open.kind == kind else self.close() + self._start(kind)
        assert self.open is not None
        self.open.parts.append(p.text)
        at = {"item_id": self.open.item_id, "output_index": self.open.index}
        if kind == "message":
            return out + [self.ev("response.output_text.delta", **at, content_index=0, delta=p.text, logprobs=[])]
        return out + [self.ev("response.reasoning_summary_text.delta", **at, summary_index=0, delta=p.text)]

    def _start(self, kind: str) -> list[str]:
        item_id = new_id("msg_" if kind == "message" else "rs_")
        self.open = _OpenItem(kind, item_id, len(self.output))
        at = {"item_id": item_id, "output_index": self.open.index}
        if kind == "message":
            return [self.ev("response.output_item.added", output_index=self.open.index,
                            item=message_item(item_id, "", "in_progress")),
                    self.ev("response.content_part.added", **at, content_index=0,
                            part={"type": "output_text", "text": "", "annotations": [], "logprobs": []})]
        return [self.ev("response.output_item.added", output_index=self.open.index, item=reasoning_item(item_id, None)),
                self.ev("response.reasoning_summary_part.added", **at, summary_index=0,
                        part={"type": "summary_text", "text": ""})]

    def close(self) -> list[str]:
        if self.open is None:
            return []
        o, self.open = self.open, None
        text, at = "".join(o.parts), {"item_id": o.item_id, "output_index": o.index}
        if o.kind == "message":
            item = message_item(o.item_id, text)
            events = [self.ev("response.output_text.done", **at, content_index=0, text=text, logprobs=[]),
                      self.ev("response.content_part.done", **at, content_index=0, part=item["content"][0])]
        else:
            item = reasoning_item(o.item_id, text)
            events = [self.ev("response.reasoning_summary_text.done", **at, summary_index=0, text=text),
                      self.ev("response.reasoning_summary_part.done", **at, summary_index=0, part=item["summary"][0])]
        self.output.append(item)
        return events + [self.ev("response.output_item.done", output_index=o.index, item=item)]

    def finish(self, finish: Finish) -> list[str]:
        out = self.close()
        for call in finish.tool_calls:
            item_id, index = new_id("fc_"), len(self.output)
            done = call_item(item_id, call)
            self.output.append(done)
            out += [self.ev("response.output_item.added", output_index=index, item=call_item(item_id, call, "in_progress")),
                    self.ev("response.function_call_arguments.delta", item_id=item_id, output_index=index,
                            delta=call.arguments),
                    self.ev("response.function_call_arguments.done", item_id=item_id, output_index=index,
                            name=call.name, arguments=call.arguments),
                    self.ev("response.output_item.done", output_index=index, item=done)]
        status = "incomplete" if finish.reason == "length" else "completed"
        return out + [self.ev(f"response.{status}", response=self.response(status, finish))]


async def _sse(out: ParsedOutput, events: _Events) -> AsyncIterator[str]:
    yield comment(f"command_id {out.gen.command_id}")
    yield events.ev("response.created", response=events.response("in_progress"))
    yield events.ev("response.in_progress", response=events.response("in_progress"))
    try:
        async for ev in out.events():
            if ev is None:
                yield comment("keep-alive")
            else:
                for line in (events.piece(ev) if isinstance(ev, Piece) else events.finish(ev)):
                    yield line
    except GenerationFailed as exc:
        err = chunk_error(exc.error)["error"]
        yield events.ev("error", code=err["code"], message=err["message"], param=err["param"])


def _whole_body(events: _Events, out: ParsedOutput, finish: Finish) -> dict[str, Any]:
    if out.reasoning:
        events.output.append(reasoning_item(new_id("rs_"), out.reasoning))
    if out.text or not finish.tool_calls:
        events.output.append(message_item(new_id("msg_"), out.text))
    events.output += [call_item(new_id("fc_"), c) for c in finish.tool_calls]
    status = "incomplete" if finish.reason == "length" else "completed"
    return events.response(status, finish)


async def create_response(request: Request) -> Response:
    req = resolve_request(request.app.state.cluster, await read_request(request, ResponsesRequest, schema_status=400))
    params = to_task_params(req)
    port = request.app.state.cluster
    check_request(port, params, FieldNames(messages="input", max_tokens="max_output_tokens"))
    check_servable(port.state, params)
    gen = await FailoverGeneration(port, params).start()
    out = ParsedOutput(gen, parse_tools=req.uses_tools)
    events = _Events(req, f"resp_{gen.command_id.replace('-', '')}", int(time.time()))
    if req.stream:
        return sse_response(_sse(out, events), gen)
    try:
        finish = await collect_unless_disconnected(request, out)
    except GenerationFailed as exc:
        return JSONResponse(chunk_error(exc.error), status_code=exc.error.status_code)
    finally:
        await gen.close()
    if finish is None:
        return Response(status_code=499)
    return JSONResponse(_whole_body(events, out, finish))


ROUTES = [
    RouteSpec("POST", "/v1/responses", create_response, "OpenAI Responses API (SSE events when stream)",
              "inference", request_model=ResponsesRequest, status_codes=(200, 400, 404)),
]
