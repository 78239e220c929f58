"""Per-request sampling: temperature, top-p/top-k/min-p, repetition penalty, seeded RNG.

Each request owns its random key, so a seeded request samples the same tokens whether it
runs alone or in a batch (a global RNG would interleave with its neighbours).
"""

import mlx.core as mx
from mlx_lm.sample_utils import apply_min_p, apply_top_k, apply_top_p, make_logits_processors

from skulk.engine.sampling_spec import (  # noqa: F401  (re-exported)
    DEFAULT_REPETITION_CONTEXT, DEFAULT_TEMPERATURE, SamplingSpec, spec_from_params,
)


class RequestSampler:
    """Turns one request's logits row into its next token."""

    def __init__(self, spec: SamplingSpec):
        self.spec = spec
        self.key = mx.random.key(spec.seed)
        self.processors = make_logits_processors(
            repetition_penalty=spec.repetition_penalty,
            repetition_context_size=spec.repetition_context_size,
            frequency_penalty=spec.frequency_penalty,
            frequency_context_size=spec.repetition_context_size,
            presence_penalty=spec.presence_penalty,
            presence_context_size=spec.repetition_context_size,
        )

    @property
    def plain_greedy(self) -> bool:
        """Greedy with nothing to apply first: rows like this are argmax'ed together."""
        return self.spec.greedy and not self.processors

    def sample(self, logits: mx.array, history: list[int]) -> mx.array:
        """logits (1, V) -> token (1,)."""
        if self.processors:
            context = mx.array(history[-self.spec.repetition_context_size:], dtype=mx.int32)
            for process in self.processors:
                logits = process(context, logits)
        if self.spec.greedy:
            return mx.argmax(logits, axis=-1)
        logprobs = logits - mx.logsumexp(logits, axis=-1, keepdims=True)
        if self.spec.top_p < 1.0:
            logprobs = apply_top_p(logprobs, self.spec.top_p)
        if self.spec.min_p > 0.0:
            logprobs = apply_min_p(logprobs, self.spec.min_p)
        if 0 < self.spec.top_k < logprobs.shape[-1]:
            logprobs = apply_top_k(logprobs, self.spec.top_k)
        self.key, sub = mx.random.split(self.key)
        return mx.random.categorical(logprobs * (1.0 / self.spec.temperature), key=sub)


def sample_rows(logits: mx.array, samplers: list[RequestSampler], histories: list[list[int]]) -> mx.array:
    """logits (B, V) -> tokens (B,), each row with its own request's sampler."""
    if all(s.plain_greedy for s in samplers):
        return mx.argmax(logits, axis=-1)
    rows = [s.sample(logits[i : i + 1], h) for i, (s, h) in enumerate(zip(samplers, histories))]
    return mx.concatenate(rows, axis=0)
