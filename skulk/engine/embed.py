"""Sentence embeddings with a small BERT encoder in MLX (mlx-lm has no encoder-only models).

Covers BERT-family checkpoints in Hugging Face layout such as all-MiniLM-L6-v2: token +
position + type embeddings, post-norm encoder layers, then sentence-transformers pooling
(mean over real tokens, L2-normalised). Runs inside the runner process, like generate.py.
"""

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import mlx.core as mx
import mlx.nn as nn
from tokenizers import Tokenizer

from skulk.errors import BadRequest
from skulk.types.tasks import TextEmbeddingTaskParams

EMBEDDING_MODEL_TYPES = frozenset({"bert"})
BATCH = 32  # texts per forward pass; bounds activation memory for long input lists
# Hugging Face names -> ours, applied in order (the attention ones first: "output.dense" is in both).
_RENAMES = (
    ("attention.self.", "attention."), ("attention.output.dense", "attention.out"),
    ("attention.output.LayerNorm", "attention_norm"), ("intermediate.dense", "ffn_in"),
    ("output.dense", "ffn_out"), ("output.LayerNorm", "ffn_norm"),
)


class NotAGenerationModel(BadRequest):
    code = "not_a_generation_model"


class _Embeddings(nn.Module):
    def __init__(self, cfg: dict[str, Any]):
        super().__init__()
        hidden = cfg["hidden_size"]
        self.word_embeddings = nn.Embedding(cfg["vocab_size"], hidden)
        self.position_embeddings = nn.Embedding(cfg["max_position_embeddings"], hidden)
        self.token_type_embeddings = nn.Embedding(cfg.get("type_vocab_size", 2), hidden)
        self.LayerNorm = nn.LayerNorm(hidden, eps=cfg.get("layer_norm_eps", 1e-12))

    def __call__(self, ids: mx.array) -> mx.array:
        positions = mx.arange(ids.shape[1])[None, :]
        x = self.word_embeddings(ids) + self.position_embeddings(positions)
        x = x + self.token_type_embeddings(mx.zeros_like(ids))  # one segment: type 0 throughout
        return self.LayerNorm(x)


class _Attention(nn.Module):
    def __init__(self, hidden: int, heads: int):
        super().__init__()
        self.heads = heads
        self.query, self.key, self.value = (nn.Linear(hidden, hidden) for _ in range(3))
        self.out = nn.Linear(hidden, hidden)

    def __call__(self, x: mx.array, bias: mx.array) -> mx.array:
        b, n, d = x.shape

        def split(t: mx.array) -> mx.array:
            return t.reshape(b, n, self.heads, d // self.heads).transpose(0, 2, 1, 3)

        q, k, v = split(self.query(x)), split(self.key(x)), split(self.value(x))
        o = mx.fast.scaled_dot_product_attention(q, k, v, scale=1 / math.sqrt(d // self.heads), mask=bias)
        return self.out(o.transpose(0, 2, 1, 3).reshape(b, n, d))


class _Layer(nn.Module):
    def __init__(self, cfg: dict[str, Any]):
        super().__init__()
        hidden, eps = cfg["hidden_size"], cfg.get("layer_norm_eps", 1e-12)
        self.attention = _Attention(hidden, cfg["num_attention_heads"])
        self.attention_norm = nn.LayerNorm(hidden, eps=eps)
        self.ffn_in = nn.Linear(hidden, cfg["intermediate_size"])
        self.ffn_out = nn.Linear(cfg["intermediate_size"], hidden)
        self.ffn_norm = nn.LayerNorm(hidden, eps=eps)

    def __call__(self, x: mx.array, bias: mx.array) -> mx.array:
        x = self.attention_norm(x + self.attention(x, bias))
        return self.ffn_norm(x + self.ffn_out(nn.gelu(self.ffn_in(x))))  # BERT's "gelu" is the erf form


class _Encoder(nn.Module):
    def __init__(self, cfg: dict[str, Any]):
        super().__init__()
        self.layer = [_Layer(cfg) for _ in range(cfg["num_hidden_layers"])]


class BertEncoder(nn.Module):
    def __init__(self, cfg: dict[str, Any]):
        super().__init__()
        self.embeddings = _Embeddings(cfg)
        self.encoder = _Encoder(cfg)

    def __call__(self, ids: mx.array, mask: mx.array) -> mx.array:
        """Unit-length sentence vectors (B, hidden) for token ids and a 1/0 mask, both (B, L)."""
        bias = ((1.0 - mask.astype(mx.float32)) * -1e9)[:, None, None, :]  # padding gets no attention
        x = self.embeddings(ids)
        for layer in self.encoder.layer:
            x = layer(x, bias)
        m = mask.astype(x.dtype)[:, :, None]
        pooled = (x * m).sum(axis=1) / mx.maximum(m.sum(axis=1), 1e-9)
        return pooled / mx.maximum(mx.linalg.norm(pooled, axis=-1, keepdims=True), 1e-12)


def _rename(key: str) -> str:
    for old, new in _RENAMES:
        key = key.replace(old, new)
    return key


def is_embedding_model_dir(model_dir: str | Path) -> bool:
    try:
        config = json.loads((Path(model_dir) / "config.json").read_text())
    except (OSError, ValueError):
        return False
    return config.get("model_type") in EMBEDDING_MODEL_TYPES


def _max_tokens(model_dir: Path, config: dict[str, Any]) -> int:
    """sentence-transformers' max_seq_length when given (256 for MiniLM), else the position limit."""
    limit = int(config["max_position_embeddings"])
    try:
        st = json.loads((model_dir / "sentence_bert_config.json").read_text())
        return min(limit, int(st["max_seq_length"]))
    except (OSError, ValueError, KeyError, TypeError):
        return limit


def load_tokenizer(model_dir: Path, max_tokens: int) -> Tokenizer:
    tok = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    tok.no_padding()  # the shipped file pads to 128; we pad per batch and mask instead
    tok.enable_truncation(max_tokens)
    return tok


def load_encoder(model_dir: str | Path) -> tuple[BertEncoder, dict[str, Any]]:
    model_dir = Path(model_dir)
    config = json.loads((model_dir / "config.json").read_text())
    model = BertEncoder(config)
    weights: dict[str, mx.array] = {}
    for path in sorted(model_dir.glob("*.safetensors")):
        weights.update(mx.load(str(path)))
    weights = {_rename(k.removeprefix("bert.")): v.astype(mx.float32) for k, v in weights.items()
               if not k.startswith("pooler.") and not k.endswith("position_ids")}
    model.load_weights(list(weights.items()), strict=True)
    mx.eval(model.parameters())
    return model, config


class EmbedEngine:
    """What worker_main drives for an embedding model: `embed` requests, nothing to step."""

    def __init__(self, model: BertEncoder, tokenizer: Tokenizer, *, rank: int = 0, world_size: int = 1):
        self.model, self.tokenizer = model, tokenizer
        self.rank, self.world_size = rank, world_size

    @classmethod
    def load(cls, model_dir: str | Path, *, rank: int = 0, world_size: int = 1,
             on_progress: Callable[[int, int], None] | None = None) -> "EmbedEngine":
        model, config = load_encoder(model_dir)
        if on_progress:
            n = config["num_hidden_layers"]
            on_progress(n, n)
        return cls(model, load_tokenizer(Path(model_dir), _max_tokens(Path(model_dir), config)),
                   rank=rank, world_size=world_size)

    @property
    def is_leader(self) -> bool:
        return self.rank == 0

    def has_work(self) -> bool:
        return False

    def step(self) -> list:
        return []

    def submit(self, request_id: str, params: Any, trace: bool = False, priority: str | None = None) -> int:
        raise NotAGenerationModel("this model computes embeddings; it cannot generate text")

    def cancel(self, request_id: str) -> bool:
        return False  # every embed request finishes within the message that asked for it

    def warmup(self) -> int:
        return self.embed(["Hello"])[1]

    def embed_frame(self, msg: dict[str, Any]) -> dict[str, Any]:
        """Answers for itself, so a wrapper around it (the warm cache's PausableEngine) still embeds."""
        return embed_frame(self, msg)

    def embed(self, texts: list[str]) -> tuple[list[list[float]], int]:
        """One unit vector per text, and the number of tokens read (special tokens included)."""
        vectors: list[list[float]] = []
        tokens = 0
        for start in range(0, len(texts), BATCH):
            encodings = self.tokenizer.encode_batch(texts[start:start + BATCH])
            width = max(len(e.ids) for e in encodings)
            ids = mx.array([e.ids + [0] * (width - len(e.ids)) for e in encodings])
            mask = mx.array([[1] * len(e.ids) + [0] * (width - len(e.ids)) for e in encodings])
            out = self.model(ids, mask)
            mx.eval(out)
            vectors.extend(out.tolist())
            tokens += sum(len(e.ids) for e in encodings)
        return vectors, tokens


def embed_frame(engine: Any, msg: dict[str, Any]) -> dict[str, Any]:
    """The reply to an `embed` request frame: an `embedding` frame, or an `error` frame."""
    request_id = msg.get("id")
    if not isinstance(engine, EmbedEngine):
        return {"op": "error", "id": request_id, "code": "not_an_embedding_model",
                "message": "this model generates text; it cannot compute embeddings"}
    try:
        params = TextEmbeddingTaskParams.model_validate(msg.get("params") or {})
    except ValueError as exc:
        return {"op": "error", "id": request_id, "code": "invalid_request", "message": str(exc)}
    if not engine.is_leader:  # followers only confirm; rank 0's vectors are the answer
        return {"op": "embedding", "id": request_id, "embeddings": [], "prompt_tokens": 0}
    try:
        vectors, tokens = engine.embed(list(params.input))
    except Exception as exc:  # a bad input must not take the runner down
        return {"op": "error", "id": request_id, "code": "embedding_failed", "message": f"{type(exc).__name__}: {exc}"}
    return {"op": "embedding", "id": request_id, "embeddings": vectors, "prompt_tokens": tokens}
