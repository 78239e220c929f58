"""OpenAI embeddings, answered by an embedding model's instance like any other request.

The API node sends EmbedText; the master creates a TextEmbedding task; rank 0's runner
computes every vector and its node sends one EmbeddingChunk back over the data plane.
"""

import base64
import struct
from typing import Any, Literal

import trio
from pydantic import BaseModel, ConfigDict
from starlette.requests import Request
from starlette.responses import JSONResponse

from skulk.api import quota
from skulk.api.generation import NEVER_STARTED, TASK_APPEAR_DEADLINE_S
from skulk.api.port import ClusterPort
from skulk.api.routing import RouteSpec, read_json_model
from skulk.api.routes_routes import resolve_request
from skulk.api.routes_warm import wake_if_cold
from skulk.errors import BadRequest, SkulkError, Unavailable
from skulk.master.serving import instances_for_model
from skulk.types import commands as cmd
from skulk.types.chunks import EmbeddingChunk, ErrorChunk, Usage
from skulk.types.models import ModelCard
from skulk.types.tasks import TextEmbeddingTaskParams

MAX_INPUTS = 2048  # OpenAI's limit per request
ANSWER_DEADLINE_S = 300.0  # covers a runner still warming up; a healthy answer takes well under a second


class EmbeddingsRequest(BaseModel):
    model_config = ConfigDict(extra="allow")
    model: str
    input: str | list[str]
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = None
    user: str | None = None


class RunnerFailure(SkulkError):
    """The runner answered with an error; the status comes from its ErrorChunk."""

    def __init__(self, chunk: ErrorChunk):
        super().__init__(chunk.error_message, code=chunk.error_type)
        self.status = chunk.status_code


def card_for(port: ClusterPort, model: str) -> ModelCard | None:
    """The running instance's card (what will answer), else the catalog's."""
    for iid in instances_for_model(port.state, model):
        shards = port.state.instances[iid].shard_assignments.runner_to_shard
        return next(iter(shards.values())).model_card
    return port.catalog.get(model)


def require_embedding_instance(port: ClusterPort, model: str) -> None:
    card = card_for(port, model)
    if card is not None and "TextEmbedding" not in card.tasks:
        raise BadRequest(f"Model {model} is not an embedding model", param="model", code="model_not_embedding")
    if not instances_for_model(port.state, model):
        raise quota.not_found_or_settling(port, model)


def _task_seen(port: ClusterPort, command_id: str) -> bool:
    return any(getattr(t, "command_id", None) == command_id for t in port.state.tasks.values())


async def _answer(port: ClusterPort, recv: Any, command_id: str) -> EmbeddingChunk | ErrorChunk:
    started = trio.current_time()
    with trio.move_on_after(ANSWER_DEADLINE_S):
        while True:
            with trio.move_on_after(1.0):
                try:
                    return await recv.receive()
                except trio.EndOfChannel:
                    raise Unavailable("The stream ended unexpectedly; please retry") from None
            if not _task_seen(port, command_id) and trio.current_time() - started > TASK_APPEAR_DEADLINE_S:
                return NEVER_STARTED
    raise Unavailable(f"No embedding arrived within {ANSWER_DEADLINE_S:g} s; please retry")


async def compute_embeddings(port: ClusterPort, model: str, texts: list[str]) -> EmbeddingChunk:
    """One vector per text from an instance of `model`; raises a SkulkError otherwise."""
    await wake_if_cold(port, model)  # a paused deployment dropped to cold is placed first
    require_embedding_instance(port, model)
    key_id = quota.caller_key_id()
    quota.check_model_allowed(port.state, key_id, model)
    await quota.admit_here(port, model)  # 503 after the queue timeout, 429 when plainly full
    command = cmd.EmbedText(task_params=TextEmbeddingTaskParams(model=model, input=texts), owner_node=port.node_id,
                            key_id=key_id)
    recv = port.open_stream(command.command_id)
    answered = False
    try:
        with quota.outstanding(port, model, command.command_id):
            session = port.session
            await port.send_command(command)
            await quota.await_admission(port, command.command_id, session)  # a refusal is its status, not a wait
        chunk = await _answer(port, recv, command.command_id)
        answered = chunk is not NEVER_STARTED
    finally:
        with trio.CancelScope(shield=True):  # the master must hear of the end even when we are cancelled
            port.close_stream(command.command_id)
            with trio.move_on_after(5):
                if answered:
                    usage = Usage(prompt_tokens=chunk.token_count) if isinstance(chunk, EmbeddingChunk) else None
                    await port.send_command(cmd.FinishCommand(finished_command_id=command.command_id, usage=usage))
                else:
                    await port.send_command(cmd.CancelCommand(cancelled_command_id=command.command_id))
    if isinstance(chunk, ErrorChunk):
        raise RunnerFailure(chunk)
    if len(chunk.embeddings) != len(texts):
        raise SkulkError(f"runner returned {len(chunk.embeddings)} vectors for {len(texts)} inputs")
    return chunk


def input_texts(value: str | list[str], param: str = "input") -> list[str]:
    texts = [value] if isinstance(value, str) else list(value)
    if not texts or any(t == "" for t in texts):
        raise BadRequest(f"'{param}' must be a non-empty string or a list of non-empty strings", param=param)
    if len(texts) > MAX_INPUTS:
        raise BadRequest(f"'{param}' has {len(texts)} items; at most {MAX_INPUTS} are allowed", param=param)
    return texts


def _encode(vector: list[float], encoding: str) -> list[float] | str:
    if encoding == "base64":  # packed little-endian float32, as OpenAI's clients decode it
        return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")
    return vector


async def create_embeddings(request: Request) -> JSONResponse:
    req = resolve_request(request.app.state.cluster, await read_json_model(request, EmbeddingsRequest))
    if req.dimensions is not None:
        raise BadRequest("'dimensions' is not supported: this model has a fixed size", param="dimensions")
    texts = input_texts(req.input)
    chunk = await compute_embeddings(request.app.state.cluster, req.model, texts)
    data = [{"object": "embedding", "index": i, "embedding": _encode(v, req.encoding_format)}
            for i, v in enumerate(chunk.embeddings)]
    usage = {"prompt_tokens": chunk.token_count, "total_tokens": chunk.token_count}
    return JSONResponse({"object": "list", "data": data, "model": req.model, "usage": usage})


ROUTES = [
    RouteSpec("POST", "/v1/embeddings", create_embeddings, "OpenAI embeddings from an embedding model instance",
              "inference", request_model=EmbeddingsRequest, status_codes=(200, 400, 404, 422, 500, 503)),
]
