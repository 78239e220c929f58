"""What both engines' step loops share (imports no engine): a request joining the batch and
one request's progress in one step."""

from dataclasses import dataclass
from collections.abc import Iterator
from typing import Any, NamedTuple

from skulk.engine.sampling_spec import SamplingSpec
from skulk.engine.textstream import TextStream

PREFILL_STEP = 512  # prompt tokens per forward pass; bounds activation memory


class Usage(NamedTuple):
    prompt_tokens: int
    completion_tokens: int

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


class StepOutput(NamedTuple):
    """One request's progress in one step. finish_reason: stop | length | cancelled | None."""

    request_id: str
    text: str
    finished: bool
    finish_reason: str | None
    usage: Usage
    token_ids: list[int]
    stop_sequence: str | None = None


@dataclass
class Request:
    """A request as it joins the batch (MLX: what rank 0 broadcasts)."""

    id: str
    prompt: list[int]
    max_tokens: int
    sampling: SamplingSpec
    stop: list[str]
    script: list[int] | None = None  # test hook: tokens to emit instead of sampling
    prefix: int = 0  # a continued request: the prompt's last `prefix` tokens are output already sent

    def to_wire(self) -> dict[str, Any]:
        return {"id": self.id, "prompt": self.prompt, "max_tokens": self.max_tokens,
                "sampling": self.sampling.to_dict(), "stop": self.stop, "script": self.script,
                "prefix": self.prefix}

    @classmethod
    def from_wire(cls, d: dict[str, Any]) -> "Request":
        return cls(d["id"], d["prompt"], d["max_tokens"], SamplingSpec(**d["sampling"]), d["stop"], d.get("script"),
                   int(d.get("prefix") or 0))


def text_stream(detokenizer: Any, req: Request) -> TextStream:
    """A request's text. A continued request replays its prefix first (output discarded: the client
    has it), so held-back text, a half character and a stop string spanning the seam carry over."""
    text = TextStream(detokenizer, req.stop)
    for token in req.prompt[len(req.prompt) - req.prefix:]:
        text.add(token)
    return text


class StreamsOneRequest:
    """`stream()` for an engine with submit/step and a `_spill` list of others' outputs."""

    _spill: list[StepOutput]

    def stream(self, request_id: str, params: Any) -> Iterator[StepOutput]:
        """Submit and drive steps, yielding this request's pieces; others' outputs wait for step()."""
        self.submit(request_id, params)  # type: ignore[attr-defined]
        while True:
            for o in self.step():  # type: ignore[attr-defined]
                if o.request_id != request_id:
                    self._spill.append(o)
                    continue
                yield o
                if o.finished:
                    return


def output_of(a: Any, text: str, reason: str | None, token_ids: list[int]) -> StepOutput:
    """`a`: an engine's per-request record (req, generated, text: TextStream)."""
    usage = Usage(len(a.req.prompt) - a.req.prefix, a.req.prefix + len(a.generated))  # totals, as if uninterrupted
    return StepOutput(a.req.id, text, reason is not None, reason, usage, token_ids, a.text.stopped_by)


def accept_token(a: Any, token: int, is_end: Any) -> StepOutput:
    """One sampled token into a request: end of generation, a stop string, the budget, or more."""
    if a.req.script:  # test hook: the scripted reply replaces what was sampled
        token = a.req.script[min(a.req.prefix + len(a.generated), len(a.req.script) - 1)]
    a.generated.append(token)
    if is_end(token):
        return output_of(a, a.text.finish(), "stop", [token])
    piece = a.text.add(token)
    if a.text.stopped:
        return output_of(a, piece, "stop", [token])
    if len(a.generated) >= a.req.max_tokens:
        return output_of(a, piece + a.text.finish(), "length", [token])
    return output_of(a, piece, None, [token])
