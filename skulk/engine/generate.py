"""The generation engine: continuous batching of chat requests over one loaded shard.

Every rank of an instance runs an identical Engine and calls `step()` in lockstep. Rank 0
decides which queued requests join the batch and which are cancelled, and broadcasts that at
the start of each step; the rank holding real logits samples and shares the tokens, so every
rank makes the same stop/length decisions without further messages. Followers (rank > 0)
ignore their own queue: `submit` there only records that rank 0 will be stepping, so a
follower's runner knows when to call `step()` (see `has_work`).

Batching: each admitted request is prefilled alone (batch of one, so its prompt pass is the
same as when it runs alone), then its KV cache joins the decode batch (mlx-lm's BatchKVCache,
left-padded with a mask). One decode step advances every active request by one token.
"""

import json
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import mlx.core as mx
from mlx_lm.models.cache import make_prompt_cache

from skulk.engine.admission import (  # noqa: F401  (re-exported)
    DEFAULT_MAX_CONCURRENT, MAX_CONCURRENT_ENV, SCRIPTED_REPLIES_ENV, max_concurrent_from_env, scripted_reply,
)
from skulk.engine.collectives import broadcast_bytes, is_ring_failure, share_tokens
from skulk.engine.errors import RingPeerLost
from skulk.engine.loading import LoadedModel
from skulk.engine.prompt import continued_prompt, output_budget
from skulk.engine.sampling import RequestSampler, sample_rows, spec_from_params
from skulk.engine.steps import (
    PREFILL_STEP, Request, StepOutput, StreamsOneRequest, Usage, accept_token, output_of, text_stream,
)
from skulk.engine.textstream import TextStream
from skulk.engine.tracing import TaskTracer
from skulk.engine.waiting import WaitingQueue
from skulk.types.tasks import ChatMessage, TextGenerationTaskParams


@dataclass
class _Active:
    req: Request
    sampler: RequestSampler
    text: TextStream
    generated: list[int] = field(default_factory=list)

    @property
    def history(self) -> list[int]:
        return self.req.prompt + self.generated


class Engine(StreamsOneRequest):
    def __init__(
        self,
        loaded: LoadedModel,
        *,
        max_concurrent: int | None = None,
        context_limit: int | None = None,
        eos_token_ids: set[int] | None = None,
        prefill_step: int = PREFILL_STEP,
    ):
        self.loaded = loaded
        self.max_concurrent = max_concurrent or max_concurrent_from_env()
        self.context_limit = loaded.context_length if context_limit is None else context_limit
        self.eos_token_ids = set(eos_token_ids or loaded.tokenizer.eos_token_ids)
        self.prefill_step = prefill_step
        self._queue: WaitingQueue[Request] = WaitingQueue()  # rank 0: high priority first, FIFO within one
        self._cancels: list[str] = []
        self._expected: set[str] = set()  # followers: submitted here, not yet admitted by rank 0
        self._settled: deque[str] = deque(maxlen=4096)  # followers: admitted/cancelled before submit
        self._active: list[_Active] = []
        self._cache: list[Any] | None = None
        self._spill: list[StepOutput] = []
        self._warmups = 0
        self.tracer = TaskTracer()  # spans of the requests submitted with trace=True

    @property
    def is_leader(self) -> bool:
        return self.loaded.rank == 0

    @property
    def distributed(self) -> bool:
        return self.loaded.world_size > 1

    # ----- requests in -----

    def submit(self, request_id: str, params: TextGenerationTaskParams, trace: bool = False,
               priority: str | None = None) -> int:
        """Queue a request; returns its prompt token count. Raises ContextLengthExceeded etc."""
        known = {r.id for r in self._queue} | {a.req.id for a in self._active} | self._expected
        if request_id in known:
            raise ValueError(f"request {request_id} is already submitted")
        prompt, prefix = continued_prompt(self.loaded.tokenizer, params)  # prefix: a failover's tokens already sent
        max_tokens = output_budget(len(prompt), params.max_output_tokens, self.context_limit, already=prefix)
        req = Request(request_id, prompt, max_tokens, spec_from_params(params), list(params.stop or []),
                      prefix=prefix)
        if (reply := scripted_reply(params)) is not None:
            req.script = list(self.loaded.tokenizer.encode(reply, add_special_tokens=False)) + [min(self.eos_token_ids)]
        if self.is_leader:
            self._queue.push(req, priority)
        elif request_id in self._settled:
            self._settled.remove(request_id)  # rank 0 already admitted it; nothing to wait for
        else:
            self._expected.add(request_id)
        if trace:
            self.tracer.begin(request_id)
        return len(prompt)

    def cancel(self, request_id: str) -> bool:
        """Cancel a queued or running request (rank 0 decides; followers' calls are ignored)."""
        if not self.is_leader:
            return False
        known = any(r.id == request_id for r in self._queue) or any(a.req.id == request_id for a in self._active)
        if known and request_id not in self._cancels:
            self._cancels.append(request_id)
        return known

    def has_work(self) -> bool:
        """Whether step() must be called (on followers: whether rank 0 is known to be stepping)."""
        return self._must_step() or bool(self._spill)

    def _must_step(self) -> bool:
        return bool(self._active or self._queue or self._cancels or self._expected)

    # ----- the step -----

    def step(self) -> list[StepOutput]:
        """Advance every active request by one token and admit queued ones. Collective."""
        out, self._spill = self._spill, []
        if not self._must_step():
            return out  # only outputs that stream() set aside: no collective to join
        try:
            with self.tracer.span(self._active_ids() if self.distributed else [], "collective", "control"):
                admit, cancels = self._exchange_control()
            out += self._apply_cancels(cancels)
            if self._active:
                out += self._decode()
            for req in admit:
                out += self._prefill(req)
        except RuntimeError as e:
            if is_ring_failure(e):
                raise RingPeerLost(f"ring peer lost: {e}") from e
            raise
        return out

    def _exchange_control(self) -> tuple[list[Request], list[str]]:
        admit: list[Request] = []
        cancels: list[str] = []
        if self.is_leader:
            cancels, self._cancels = self._cancels, []
            self._queue.remove(cancels)
            running = [a for a in self._active if a.req.id not in cancels]
            room = self.max_concurrent - len(running)
            while self._queue and len(admit) < room:
                admit.append(self._queue.pop())
        if not self.distributed:
            return admit, cancels
        payload = None
        if self.is_leader and (admit or cancels):
            payload = json.dumps({"admit": [r.to_wire() for r in admit], "cancel": cancels}).encode()
        raw = broadcast_bytes(payload, self.loaded.group)
        if self.is_leader or not raw:
            return admit, cancels
        msg = json.loads(raw)
        admit = [Request.from_wire(d) for d in msg["admit"]]
        for rid in [r.id for r in admit] + msg["cancel"]:
            if rid in self._expected:
                self._expected.discard(rid)
            else:  # this rank's own submit is still on its way
                self._settled.append(rid)
        return admit, msg["cancel"]

    def _apply_cancels(self, cancels: list[str]) -> list[StepOutput]:
        out = []
        keep = []
        for i, a in enumerate(self._active):
            if a.req.id in cancels:
                out.append(self._output(a, "", "cancelled", []))
            else:
                keep.append(i)
        active_ids = {a.req.id for a in self._active}
        for rid in cancels:
            self.tracer.marker(rid, "cancelled")
            if rid not in active_ids:  # still queued: never ran
                out.append(StepOutput(rid, "", True, "cancelled", Usage(0, 0), []))
        self._keep(keep)
        return out

    def _decode(self) -> list[StepOutput]:
        ids = self._active_ids()
        with self.tracer.span(ids, "decode", "decode", batch=len(ids)):
            inputs = mx.array([[a.generated[-1]] for a in self._active], dtype=mx.int32)
            logits = self._forward(inputs, self._cache, ids)
            tokens = self._sample(logits, self._active)
        out = []
        keep = []
        for i, (a, token) in enumerate(zip(self._active, tokens)):
            result = self._advance(a, token)
            out.append(result)
            if not result.finished:
                keep.append(i)
        self._keep(keep)
        return out

    def _prefill(self, req: Request) -> list[StepOutput]:
        active = _Active(req, RequestSampler(req.sampling), text_stream(self.loaded.tokenizer.detokenizer, req))
        if self.is_leader:
            self.tracer.since_begin(req.id, "queue", "runner_queue")
        with self.tracer.span([req.id], "prefill", "prefill", prompt_tokens=len(req.prompt)):
            cache = make_prompt_cache(self.loaded.model)
            prompt = req.prompt
            for start in range(0, len(prompt) - 1, self.prefill_step):
                chunk = prompt[start : min(start + self.prefill_step, len(prompt) - 1)]
                self._forward(mx.array([chunk], dtype=mx.int32), cache, [req.id])
                mx.eval([c.state for c in cache])
            logits = self._forward(mx.array([prompt[-1:]], dtype=mx.int32), cache, [req.id])
            (token,) = self._sample(logits, [active], cache)
        result = self._advance(active, token)
        if not result.finished:
            self._join_batch(active, cache)
        return [result]

    def _sample(self, logits: mx.array | None, rows: list[_Active], cache: list[Any] | None = None) -> list[int]:
        cache = self._cache if cache is None else cache
        ids = [a.req.id for a in rows]
        tokens = None
        if logits is not None:  # evaluating the tokens also runs this rank's (lazy) forward pass
            with self.tracer.span(ids, "sample", "sample"):
                tokens = sample_rows(logits[:, -1, :], [a.sampler for a in rows], [a.history for a in rows])
                mx.eval(tokens, [c.state for c in cache])
        if not self.distributed:
            return tokens.tolist()
        with self.tracer.span(ids, "collective", "share_tokens"):
            return share_tokens(tokens, len(rows), self.loaded.group, self.loaded.sampling_rank)

    def _forward(self, inputs: mx.array, cache: list[Any], ids: list[str]) -> mx.array | None:
        stage = self.loaded.stage
        if stage is None or stage.is_last:
            return self.loaded.forward(inputs, cache)  # lazy: evaluated where it is sampled
        # A non-last stage evaluates here: wait for rank-1's activations, compute, send to rank+1.
        with self.tracer.span(ids, "pipeline", "send", to_rank=stage.rank + 1):
            return self.loaded.forward(inputs, cache)

    def _active_ids(self) -> list[str]:
        return [a.req.id for a in self._active]

    def _advance(self, a: _Active, token: int) -> StepOutput:
        return accept_token(a, token, self.eos_token_ids.__contains__)

    @staticmethod
    def _output(a: _Active, text: str, reason: str | None, token_ids: list[int]) -> StepOutput:
        return output_of(a, text, reason, token_ids)

    # ----- the batch cache -----

    def _join_batch(self, active: _Active, cache: list[Any]) -> None:
        merged = [type(c).merge([c]) for c in cache]
        if self._cache is None:
            self._cache = merged
        else:
            for batch, one in zip(self._cache, merged):
                batch.extend(one)
        self._active.append(active)

    def _keep(self, keep: list[int]) -> None:
        if len(keep) == len(self._active):
            return
        self._active = [self._active[i] for i in keep]
        if not keep:
            self._cache = None
            return
        for c in self._cache or []:
            c.filter(keep)

    # ----- conveniences -----

    def warmup(self, prompt: str = "Hello", max_tokens: int = 2) -> int:
        """A tiny greedy generation on every rank together; loads lazy weights. Returns tokens."""
        self._warmups += 1
        params = TextGenerationTaskParams(
            model="warmup", input=[ChatMessage(role="user", content=prompt)],
            max_output_tokens=max_tokens, temperature=0.0,
        )
        n = 0
        for o in self.stream(f"__warmup-{self._warmups}", params):
            n += len(o.token_ids)
        return n
