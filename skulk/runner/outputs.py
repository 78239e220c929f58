"""What a runner produces for a task, as the supervisor hands it on."""

from dataclasses import dataclass
from typing import Any

from skulk.types.chunks import Usage


@dataclass(frozen=True)
class RunnerOutput:
    """One chunk for one task, as rank 0 streams it (followers only report the final one)."""

    task_id: str
    text: str
    token_ids: list[int]
    finished: bool
    finish_reason: str | None
    usage: Usage | None
    error_code: str | None = None
    error_message: str | None = None
    embeddings: list[list[float]] | None = None  # set only by an embedding request's answer
    stop_sequence: str | None = None  # the stop string that ended the output


def chunk_output(task_id: str, msg: dict[str, Any]) -> RunnerOutput:
    """A worker_main `chunk` frame as a RunnerOutput (its usage also carries total_tokens; dropped)."""
    usage = msg.get("usage")
    if usage is not None:
        usage = Usage(prompt_tokens=int(usage.get("prompt_tokens", 0)),
                      completion_tokens=int(usage.get("completion_tokens", 0)))
    return RunnerOutput(task_id=task_id, text=str(msg.get("text") or ""),
                        token_ids=[int(t) for t in msg.get("token_ids") or []],
                        finished=bool(msg.get("finished")), finish_reason=msg.get("finish_reason"),
                        usage=usage, stop_sequence=msg.get("stop_sequence"))


def error_output(task_id: str, code: str, message: str) -> RunnerOutput:
    """The final output of a task that ended in an error (refused, or its runner died)."""
    return RunnerOutput(task_id=task_id, text="", token_ids=[], finished=True, finish_reason="error",
                        usage=None, error_code=code, error_message=message)


def embedding_output(task_id: str, msg: dict[str, Any]) -> RunnerOutput:
    """A worker_main `embedding` frame: the whole (and final) answer to an embed request."""
    vectors = [[float(x) for x in row] for row in msg.get("embeddings") or []]
    return RunnerOutput(task_id=task_id, text="", token_ids=[], finished=True, finish_reason="stop",
                        usage=Usage(prompt_tokens=int(msg.get("prompt_tokens") or 0)), embeddings=vectors)
