"""The llama.cpp generation engine: continuous batching of chat requests in one llama.cpp context.

The same driving surface as skulk.engine.generate.Engine (submit / cancel / has_work / step /
warmup / tracer), so worker_main's loop, the supervisor and every status above it are shared.
Always a single rank: llama.cpp runs the whole model in this process.

Batching: each request owns a sequence id (its own KV stream). A newly admitted request is
prefilled alone, in chunks, so its prompt pass is the same as when it runs alone; after that one
llama_decode advances every active sequence by one token (one row per sequence in the batch).
A request that ends (stop, length, cancel) frees its sequence's KV cells and its slot.
"""

from dataclasses import dataclass, field
from typing import Any

from skulk.engine.admission import max_concurrent_from_env, scripted_reply
from skulk.engine.llama_model import BatchToken, LlamaModel, free_sampler, make_sampler
from skulk.engine.llama_text import GgufChat, GgufDetokenizer
from skulk.engine.prompt import continued_prompt, output_budget
from skulk.engine.sampling_spec import spec_from_params
from skulk.engine.steps import (
    PREFILL_STEP, Request, StepOutput, StreamsOneRequest, Usage, accept_token, output_of, text_stream,
)
from skulk.engine.textstream import TextStream
from skulk.engine.tracing import TaskTracer
from skulk.engine.waiting import WaitingQueue
from skulk.types.tasks import ChatMessage, TextGenerationTaskParams

@dataclass
class _Seq:
    req: Request
    seq: int
    sampler: Any
    text: TextStream
    n_past: int = 0  # tokens of this sequence already in its KV stream
    generated: list[int] = field(default_factory=list)


class LlamaEngine(StreamsOneRequest):
    is_leader = True  # one rank: this process is the whole instance

    def __init__(self, model: LlamaModel, *, max_concurrent: int | None = None,
                 context_limit: int | None = None, prefill_step: int = PREFILL_STEP):
        self.model = model
        self.chat = GgufChat(model)
        self.max_concurrent = min(max_concurrent or max_concurrent_from_env(), model.n_seq)
        limit = model.n_ctx_seq if context_limit is None else min(context_limit, model.n_ctx_seq)
        self.context_limit = limit
        self.prefill_step = max(1, min(prefill_step, model.n_batch))
        self._free = list(range(model.n_seq))
        self._queue: WaitingQueue[Request] = WaitingQueue()  # high priority first, FIFO within one
        self._cancels: list[str] = []
        self._active: list[_Seq] = []
        self._spill: list[StepOutput] = []
        self._warmups = 0
        self.tracer = TaskTracer()

    # ----- requests in -----

    def submit(self, request_id: str, params: TextGenerationTaskParams, trace: bool = False,
               priority: str | None = None) -> int:
        """Queue a request; returns its prompt token count. Raises ContextLengthExceeded etc."""
        known = {r.id for r in self._queue} | {a.req.id for a in self._active}
        if request_id in known:
            raise ValueError(f"request {request_id} is already submitted")
        prompt, prefix = continued_prompt(self.chat, params, self.model.n_vocab)  # prefix: failover tokens
        max_tokens = output_budget(len(prompt), params.max_output_tokens, self.context_limit, already=prefix)
        req = Request(request_id, prompt, max_tokens, spec_from_params(params), list(params.stop or []),
                      prefix=prefix)
        if (reply := scripted_reply(params)) is not None:
            req.script = self.model.tokenize(reply) + [self.model.eos]
        self._queue.push(req, priority)
        if trace:
            self.tracer.begin(request_id)
        return len(prompt)

    def cancel(self, request_id: str) -> bool:
        known = any(r.id == request_id for r in self._queue) or any(a.req.id == request_id for a in self._active)
        if known and request_id not in self._cancels:
            self._cancels.append(request_id)
        return known

    def has_work(self) -> bool:
        return bool(self._active or self._queue or self._cancels or self._spill)

    def embed_frame(self, msg: dict[str, Any]) -> dict[str, Any]:
        return {"op": "error", "id": msg.get("id"), "code": "not_an_embedding_model",
                "message": "this model generates text; it cannot compute embeddings"}

    # ----- the step -----

    def step(self) -> list[StepOutput]:
        """Cancel, advance every active request by one token, then admit and prefill queued ones."""
        out, self._spill = self._spill, []
        out += self._apply_cancels()
        if self._active:
            out += self._decode()
        while self._queue and self._free and len(self._active) < self.max_concurrent:
            out += self._prefill(self._queue.pop())
        return out

    def _apply_cancels(self) -> list[StepOutput]:
        cancels, self._cancels = self._cancels, []
        if not cancels:
            return []
        out = []
        queued = self._queue.remove(cancels)
        for r in queued:
            out.append(StepOutput(r.id, "", True, "cancelled", Usage(0, 0), []))
        for a in [a for a in self._active if a.req.id in cancels]:
            out.append(self._output(a, "", "cancelled", []))
            self._release(a)
        for rid in cancels:
            self.tracer.marker(rid, "cancelled")
        return out

    def _decode(self) -> list[StepOutput]:
        ids = [a.req.id for a in self._active]
        with self.tracer.span(ids, "decode", "decode", batch=len(ids)):
            self.model.decode([BatchToken(a.generated[-1], a.n_past, a.seq, True) for a in self._active])
            tokens = [self.model.sample(a.sampler, i) for i, a in enumerate(self._active)]
        out = []
        for a, token in zip(list(self._active), tokens):
            a.n_past += 1
            result = self._advance(a, token)
            out.append(result)
            if result.finished:
                self._release(a)
        return out

    def _prefill(self, req: Request) -> list[StepOutput]:
        self.tracer.since_begin(req.id, "queue", "runner_queue")
        seq = _Seq(req, self._free.pop(0), make_sampler(req.sampling, self.model.n_vocab, req.prompt),
                   text_stream(GgufDetokenizer(self.model), req))
        self._active.append(seq)
        with self.tracer.span([req.id], "prefill", "prefill", prompt_tokens=len(req.prompt)):
            prompt = req.prompt
            for start in range(0, len(prompt), self.prefill_step):
                chunk = prompt[start : start + self.prefill_step]
                last = start + len(chunk) == len(prompt)
                self.model.decode([BatchToken(t, start + i, seq.seq, last and i == len(chunk) - 1)
                                   for i, t in enumerate(chunk)])
            seq.n_past = len(prompt)
            token = self.model.sample(seq.sampler, -1)  # -1: the batch's last (only) logits row
        result = self._advance(seq, token)
        if result.finished:
            self._release(seq)
        return [result]

    def _advance(self, a: _Seq, token: int) -> StepOutput:
        return accept_token(a, token, self.model.is_eog)

    @staticmethod
    def _output(a: _Seq, text: str, reason: str | None, token_ids: list[int]) -> StepOutput:
        return output_of(a, text, reason, token_ids)

    def _release(self, a: _Seq) -> None:
        """The request is over: its KV cells, sampler and sequence id go back."""
        self._active.remove(a)
        self.model.forget(a.seq)
        free_sampler(a.sampler)
        self._free.append(a.seq)

    # ----- conveniences -----

    @property
    def free_slots(self) -> int:
        return len(self._free)

    def warmup(self, prompt: str = "Hello", max_tokens: int = 2) -> int:
        """A tiny greedy generation; pages the weights in. Returns the tokens generated."""
        self._warmups += 1
        params = TextGenerationTaskParams(model="warmup", input=[ChatMessage(role="user", content=prompt)],
                                          max_output_tokens=max_tokens, temperature=0.0)
        return sum(len(o.token_ids) for o in self.stream(f"__warmup-{self._warmups}", params))
