"""What a runner produces for a task, as the supervisor hands it on."""

from dataclasses import dataclass
from typing import Any

from skulk.types import runner_frames as frames
from skulk.types.chunks import Usage
from skulk.types.events import TraceEventData


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


@dataclass(frozen=True)
class RunnerTraces:
    """A traced task's spans from one rank: [{"name", "cat", "ts", "dur", "attrs"}], wall-clock µs."""

    task_id: str
    kind: str  # text | embedding
    spans: list[dict[str, Any]]


def traces_output(msg: frames.Traces | dict[str, Any]) -> RunnerTraces:
    """A worker_main `traces` frame; spans that are not maps are dropped."""
    msg = frames.from_runner(msg) if isinstance(msg, dict) else msg
    return RunnerTraces(task_id=msg.id, kind=msg.kind or "text", spans=[s for s in msg.spans if isinstance(s, dict)])


def trace_events(traces: RunnerTraces, rank: int, node_id: str, model_id: str) -> list[TraceEventData]:
    """The runner's spans as cluster trace events, stamped with where they ran; malformed ones are skipped."""
    events = []
    for s in traces.spans:
        raw = s.get("attrs") if isinstance(s.get("attrs"), dict) else {}
        attrs = {k: v for k, v in raw.items() if isinstance(v, (str, int, float, bool))}
        try:
            events.append(TraceEventData(
                name=str(s.get("name")), category=str(s.get("cat")), start_us=int(s.get("ts") or 0),
                duration_us=max(int(s.get("dur") or 0), 0), rank=rank, node_id=node_id, model_id=model_id,
                task_kind=traces.kind, attrs=attrs))
        except (TypeError, ValueError):
            continue
    return events


def chunk_output(task_id: str, msg: frames.Chunk | dict[str, Any]) -> RunnerOutput:
    """A worker_main `chunk` frame as a RunnerOutput (its usage also carries total_tokens; dropped)."""
    msg = frames.from_runner(msg) if isinstance(msg, dict) else msg
    usage = None if msg.usage is None else Usage(prompt_tokens=msg.usage.prompt_tokens,
                                                 completion_tokens=msg.usage.completion_tokens)
    return RunnerOutput(task_id=task_id, text=msg.text, token_ids=list(msg.token_ids), finished=msg.finished,
                        finish_reason=msg.finish_reason, usage=usage, stop_sequence=msg.stop_sequence)


def error_output(task_id: str, code: str, message: str) -> RunnerOutput:
    """The final output of a task that ended in an error (refused, or its runner died)."""
    return RunnerOutput(task_id=task_id, text="", token_ids=[], finished=True, finish_reason="error",
                        usage=None, error_code=code, error_message=message)


def embedding_output(task_id: str, msg: frames.Embedding | dict[str, Any]) -> RunnerOutput:
    """A worker_main `embedding` frame: the whole (and final) answer to an embed request."""
    msg = frames.from_runner(msg) if isinstance(msg, dict) else msg
    return RunnerOutput(task_id=task_id, text="", token_ids=[], finished=True, finish_reason="stop",
                        usage=Usage(prompt_tokens=msg.prompt_tokens), embeddings=[list(r) for r in msg.embeddings])
