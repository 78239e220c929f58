"""Frames between a node and its runner process (skulk.engine.worker_main), as typed models.

On the wire each is a msgpack map whose "op" names the frame (skulk.engine.framing); these models
are that map, validated on both sides: the runner parses what the node sends (ToRunner), the node
parses what the runner writes (FromRunner), so neither side reads a raw dict. Unknown fields are
ignored (a field added on one side does not break the other); a wrong type or a missing field is a
malformed frame.
"""

from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from skulk.types.tasks import TextEmbeddingTaskParams, TextGenerationTaskParams


class _Frame(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    def wire(self) -> dict[str, Any]:
        """The map to write (snake_case fields, "op" included)."""
        return self.model_dump(mode="json")


# ----- node -> runner -----

class Generate(_Frame):
    op: Literal["generate"] = "generate"
    id: str
    params: TextGenerationTaskParams
    trace: bool = False
    priority: str | None = None


class Embed(_Frame):
    op: Literal["embed"] = "embed"
    id: str
    params: TextEmbeddingTaskParams
    trace: bool = False


class Cancel(_Frame):
    op: Literal["cancel"] = "cancel"
    id: str


class Warmup(_Frame):
    op: Literal["warmup"] = "warmup"


class Pause(_Frame):
    op: Literal["pause"] = "pause"


class Resume(_Frame):
    op: Literal["resume"] = "resume"


class Shutdown(_Frame):
    op: Literal["shutdown"] = "shutdown"


ToRunner = Annotated[Union[Generate, Embed, Cancel, Warmup, Pause, Resume, Shutdown], Field(discriminator="op")]


# ----- runner -> node -----

class FrameUsage(_Frame):
    prompt_tokens: int = Field(default=0, ge=0)
    completion_tokens: int = Field(default=0, ge=0)
    total_tokens: int = Field(default=0, ge=0)


class Connected(_Frame):
    op: Literal["connected"] = "connected"
    rank: int = 0
    world_size: int = 1


class Loading(_Frame):
    op: Literal["loading"] = "loading"
    layers_loaded: int = 0
    total_layers: int = 0


class Ready(_Frame):
    op: Literal["ready"] = "ready"
    rank: int = 0
    world_size: int = 1
    start_layer: int | None = 0
    end_layer: int | None = None
    active_memory: int | None = None
    engine: str | None = None
    context_limit: int | None = None


class Chunk(_Frame):
    """Rank 0 streams every chunk of a request; other ranks send only the final one."""

    op: Literal["chunk"] = "chunk"
    id: str
    text: str = ""
    token_ids: list[int] = Field(default_factory=list)
    finished: bool = False
    finish_reason: str | None = None  # "stop" | "length" | "cancelled"
    usage: FrameUsage | None = None
    stop_sequence: str | None = None


class Embedding(_Frame):
    op: Literal["embedding"] = "embedding"
    id: str
    embeddings: list[list[float]] = Field(default_factory=list)  # followers send none
    prompt_tokens: int = Field(default=0, ge=0)


class Error(_Frame):
    """A request refused (or, with no id, an op such as pause that could not be done)."""

    op: Literal["error"] = "error"
    id: str | None = None
    code: str | None = None
    message: str = ""


class Warmed(_Frame):
    op: Literal["warmed"] = "warmed"
    tokens: int = 0


class Paused(_Frame):
    op: Literal["paused"] = "paused"
    rss_bytes: int | None = Field(default=None, ge=0)


class Traces(_Frame):
    """A traced request's spans (µs): [{"name", "cat", "ts", "dur", "attrs"}]."""

    op: Literal["traces"] = "traces"
    id: str
    kind: str = "text"  # text | embedding
    spans: list[Any] = Field(default_factory=list)  # one bad span is dropped, not the whole report


class Fatal(_Frame):
    op: Literal["fatal"] = "fatal"
    code: str | None = None
    message: str = ""


FromRunner = Annotated[
    Union[Connected, Loading, Ready, Chunk, Embedding, Error, Warmed, Paused, Traces, Fatal],
    Field(discriminator="op")]

_TO_RUNNER: TypeAdapter = TypeAdapter(ToRunner)
_FROM_RUNNER: TypeAdapter = TypeAdapter(FromRunner)


def to_runner(message: Any) -> Any:
    """A node -> runner map as its frame model; raises pydantic's ValidationError when malformed."""
    return _TO_RUNNER.validate_python(message)


def from_runner(message: Any) -> Any:
    """A runner -> node map as its frame model; raises pydantic's ValidationError when malformed."""
    return _FROM_RUNNER.validate_python(message)
