"""Per-request sampling parameters, validated: shared by the MLX and llama.cpp engines (no MLX here)."""

import secrets
from dataclasses import asdict, dataclass

from skulk.engine.errors import InvalidSamplingParams
from skulk.types.tasks import TextGenerationTaskParams

DEFAULT_TEMPERATURE = 1.0  # OpenAI's default when a request leaves it out
DEFAULT_REPETITION_CONTEXT = 20


@dataclass(frozen=True)
class SamplingSpec:
    temperature: float = DEFAULT_TEMPERATURE
    top_p: float = 1.0
    top_k: int = 0
    min_p: float = 0.0
    seed: int = 0
    repetition_penalty: float | None = None
    repetition_context_size: int = DEFAULT_REPETITION_CONTEXT
    frequency_penalty: float | None = None  # OpenAI's additive penalties, as mlx-lm applies them
    presence_penalty: float | None = None

    @property
    def greedy(self) -> bool:
        return self.temperature == 0

    def to_dict(self) -> dict:
        return asdict(self)


def spec_from_params(params: TextGenerationTaskParams) -> SamplingSpec:
    """Validate and fill defaults; an unseeded sampled request gets a random seed here."""
    temperature = DEFAULT_TEMPERATURE if params.temperature is None else float(params.temperature)
    top_p = 1.0 if params.top_p is None else float(params.top_p)
    min_p = 0.0 if params.min_p is None else float(params.min_p)
    top_k = params.top_k or 0
    penalty = params.repetition_penalty
    checks = [
        (temperature >= 0, "temperature", "must be >= 0"),
        (0 < top_p <= 1, "top_p", "must be in (0, 1]"),
        (0 <= min_p <= 1, "min_p", "must be in [0, 1]"),
        (top_k >= 0, "top_k", "must be >= 0"),
        (penalty is None or penalty > 0, "repetition_penalty", "must be > 0"),
    ]
    for ok, name, why in checks:
        if not ok:
            raise InvalidSamplingParams(f"{name} {why}", param=name)
    seed = params.seed if params.seed is not None else secrets.randbits(31)
    return SamplingSpec(
        temperature, top_p, top_k, min_p, int(seed), penalty,
        params.repetition_context_size or DEFAULT_REPETITION_CONTEXT,
        params.frequency_penalty or None, params.presence_penalty or None,
    )
