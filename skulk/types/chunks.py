"""Generation output on the data plane: rank 0's node -> the API node that owns the request."""

from pydantic import Field

from skulk.types.base import TaggedModel, WireModel, tagged_union
from skulk.types.ids import CommandId, TaskId
from skulk.types.tasks import TextEmbeddingTaskParams, TextGenerationTaskParams


class Usage(WireModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


class GenerationStats(WireModel):
    prompt_tps: float = 0.0
    generation_tps: float = 0.0
    prompt_tokens: int = 0
    generation_tokens: int = 0


class TokenChunk(TaggedModel):
    """A piece of generated text; the last one carries finish_reason and usage."""

    text: str = ""
    token_ids: list[int] = Field(default_factory=list)
    finish_reason: str | None = None
    usage: Usage | None = None
    stats: GenerationStats | None = None
    stop_sequence: str | None = None  # the stop string that ended the output (finish_reason "stop")


class EmbeddingChunk(TaggedModel):
    """The whole answer to an embedding request: one vector per input, in input order."""

    embeddings: list[list[float]]
    token_count: int = 0


class ErrorChunk(TaggedModel):
    """Ends a stream with an error; `retryable` errors mean "send the request again"."""

    error_type: str
    error_message: str
    status_code: int = 500
    retryable: bool = False


Chunk = tagged_union(TokenChunk, EmbeddingChunk, ErrorChunk)


MAX_BATCH_CHUNKS = 1024  # chunks of one command in one data-plane message


class DataChunk(TaggedModel):
    command_id: CommandId = Field(max_length=128)  # a uuid; the bound keeps a forged one cheap to refuse
    sequence: int = Field(ge=0, le=2**53 - 1)
    chunk: Chunk


class ChunkBatch(TaggedModel):
    """Consecutive chunks of one command in one message: `chunks[i]` has sequence `first_sequence + i`."""

    command_id: CommandId = Field(max_length=128)
    first_sequence: int = Field(ge=0, le=2**53 - 1)
    chunks: list[Chunk] = Field(min_length=1, max_length=MAX_BATCH_CHUNKS)


class RequestParams(TaggedModel):
    """API node -> every node of the task's instance: what the replicated task leaves out.
    Accepted only from the task's owner node; exactly one of the two params is set."""

    task_id: TaskId = Field(max_length=128)
    command_id: CommandId = Field(max_length=128)
    generation: TextGenerationTaskParams | None = None
    embedding: TextEmbeddingTaskParams | None = None

    @property
    def params(self) -> TextGenerationTaskParams | TextEmbeddingTaskParams | None:
        return self.generation if self.generation is not None else self.embedding


DataMessage = tagged_union(DataChunk, ChunkBatch, RequestParams)
