"""Convert a llama-architecture GGUF file into an mlx-lm model directory.

Weights come from `mx.load`, which reads GGUF natively and maps Q4_0/Q4_1/Q8_0 blocks onto
MLX affine quantization (group 32). They stay quantized: the directory is ~5x smaller than
fp32 and `mlx_lm.load` reads it; a runner that wants fp32 dequantizes at load time.
The tokenizer and chat template are rebuilt from the GGUF metadata (`gguf_tokenizer`).
"""

import collections
import json
import logging
from pathlib import Path
from typing import Any

import gguf
import mlx.core as mx

from skulk.errors import SkulkError
from skulk.models.atomic import build_dir_atomically
from skulk.models.gguf_tokenizer import special_token_ids, write_tokenizer_files

log = logging.getLogger(__name__)

GGUF_GROUP_SIZE = 32  # every GGUF block type mx.load maps to affine uses 32-wide groups

_TOP_LEVEL = {"token_embd": "model.embed_tokens", "output_norm": "model.norm", "output": "lm_head"}
_IN_BLOCK = {
    "attn_norm": "input_layernorm",
    "ffn_norm": "post_attention_layernorm",
    "attn_q": "self_attn.q_proj",
    "attn_k": "self_attn.k_proj",
    "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj",
    "ffn_gate": "mlp.gate_proj",
    "ffn_up": "mlp.up_proj",
    "ffn_down": "mlp.down_proj",
}


def read_gguf_metadata(path: Path) -> dict[str, Any]:
    """All key/value fields of a GGUF file as plain Python values."""
    reader = gguf.GGUFReader(path, "r")
    return {key: field.contents() for key, field in reader.fields.items()}


def hf_tensor_name(gguf_name: str) -> str:
    """`blk.3.attn_q.scales` -> `model.layers.3.self_attn.q_proj.scales`."""
    base, suffix = gguf_name.rsplit(".", 1)
    parts = base.split(".")
    if parts[0] == "blk" and len(parts) == 3 and parts[2] in _IN_BLOCK:
        return f"model.layers.{parts[1]}.{_IN_BLOCK[parts[2]]}.{suffix}"
    if base in _TOP_LEVEL:
        return f"{_TOP_LEVEL[base]}.{suffix}"
    raise SkulkError(f"GGUF tensor {gguf_name!r} has no known llama counterpart")


def unpermute_rows(w: mx.array, n_head: int) -> mx.array:
    """Undo llama.cpp's Q/K row permutation (interleaved -> half-split rotary layout).

    Quantization groups run along the input (last) axis, so permuting rows of the packed
    weight, scales and biases alike is exact.
    """
    rows = w.shape[0]
    split = w.reshape(n_head, rows // n_head // 2, 2, *w.shape[1:])
    return split.swapaxes(1, 2).reshape(w.shape)


def convert_weights(raw: dict[str, mx.array], n_head: int, n_kv_head: int) -> dict[str, mx.array]:
    """Rename GGUF tensors to Hugging Face llama names and un-permute Q and K."""
    if "rope_freqs.weight" in raw:
        raise SkulkError("GGUF uses llama3 rope frequency scaling, which the converter lacks")
    out = {}
    for name, value in raw.items():
        hf = hf_tensor_name(name)
        if ".self_attn.q_proj." in hf:
            value = unpermute_rows(value, n_head)
        elif ".self_attn.k_proj." in hf:
            value = unpermute_rows(value, n_kv_head)
        out[hf] = value
    return out


def quantization_config(weights: dict[str, mx.array]) -> dict[str, Any] | None:
    """mlx-lm's `quantization` entry: the commonest (bits, group) plus per-module overrides."""
    per_module: dict[str, tuple[int, int]] = {}
    for name, scales in weights.items():
        if not name.endswith(".scales"):
            continue
        module = name[: -len(".scales")]
        in_dims = scales.shape[-1] * GGUF_GROUP_SIZE
        bits = weights[f"{module}.weight"].shape[-1] * 32 // in_dims
        per_module[module] = (bits, GGUF_GROUP_SIZE)
    if not per_module:
        return None
    (bits, group), _ = collections.Counter(per_module.values()).most_common(1)[0]
    config: dict[str, Any] = {"group_size": group, "bits": bits}
    for module, (m_bits, m_group) in sorted(per_module.items()):
        if (m_bits, m_group) != (bits, group):
            config[module] = {"group_size": m_group, "bits": m_bits}
    return config


def llama_config(meta: dict[str, Any], weights: dict[str, mx.array]) -> dict[str, Any]:
    """config.json for mlx-lm / transformers from the GGUF `llama.*` hyperparameters."""
    arch = meta.get("general.architecture")
    if arch != "llama":
        raise SkulkError(f"GGUF architecture {arch!r} is not supported (only llama)")
    n_head = int(meta["llama.attention.head_count"])
    hidden = int(meta["llama.embedding_length"])
    config: dict[str, Any] = {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_size": hidden,
        "intermediate_size": int(meta["llama.feed_forward_length"]),
        "num_hidden_layers": int(meta["llama.block_count"]),
        "num_attention_heads": n_head,
        "num_key_value_heads": int(meta.get("llama.attention.head_count_kv", n_head)),
        "head_dim": int(meta.get("llama.attention.key_length", hidden // n_head)),
        "rms_norm_eps": float(meta["llama.attention.layer_norm_rms_epsilon"]),
        "rope_theta": float(meta.get("llama.rope.freq_base", 10000.0)),
        "max_position_embeddings": int(meta.get("llama.context_length", 2048)),
        "vocab_size": len(meta["tokenizer.ggml.tokens"]),
        "tie_word_embeddings": not any(k.startswith("lm_head.") for k in weights),
        "hidden_act": "silu",
        "attention_bias": any(k.endswith("self_attn.q_proj.bias") for k in weights),
        "mlp_bias": False,
        **special_token_ids(meta),
    }
    scaling = meta.get("llama.rope.scaling.type")
    if scaling not in (None, "none"):
        raise SkulkError(f"GGUF rope scaling {scaling!r} is not supported by the converter")
    if (quant := quantization_config(weights)) is not None:
        config["quantization"] = quant
        config["quantization_config"] = quant
    return config


def write_mlx_model(gguf_path: Path, out: Path) -> None:
    """Write config.json, model.safetensors, tokenizer and generation config into `out`."""
    meta = read_gguf_metadata(gguf_path)
    raw = mx.load(str(gguf_path))
    n_head = int(meta["llama.attention.head_count"])
    n_kv = int(meta.get("llama.attention.head_count_kv", n_head))
    weights = convert_weights(raw, n_head, n_kv)
    config = llama_config(meta, weights)
    mx.save_safetensors(str(out / "model.safetensors"), weights, metadata={"format": "mlx"})
    (out / "config.json").write_text(json.dumps(config, indent=2))
    generation = {k: v for k, v in special_token_ids(meta).items() if k != "unk_token_id"}
    (out / "generation_config.json").write_text(json.dumps(generation, indent=2))
    write_tokenizer_files(meta, out, max_length=config["max_position_embeddings"])


def _has_config(path: Path) -> bool:
    return (path / "config.json").is_file()


def convert_gguf_to_mlx(gguf_path: Path, target: Path) -> Path:
    """Convert `gguf_path` into the model directory `target`, atomically; returns `target`.

    If `target` already holds a model (config.json) it is returned as is. Safe to call from
    several processes at once: one converts, the others wait and reuse its result.
    """
    gguf_path = Path(gguf_path)
    if not gguf_path.is_file():
        raise SkulkError(f"GGUF file {gguf_path} does not exist")
    log.info("converting %s into %s", gguf_path, target)

    def build(tmp: Path) -> None:
        try:
            write_mlx_model(gguf_path, tmp)
        except SkulkError:
            raise
        except (OSError, ValueError, KeyError, IndexError, RuntimeError) as exc:
            # A corrupt or unexpected file surfaces from gguf/mlx as one of these.
            reason = f"{type(exc).__name__}: {exc}"
            raise SkulkError(f"cannot convert {gguf_path.name}: {reason}") from exc

    return build_dir_atomically(Path(target), build, is_done=_has_config)
