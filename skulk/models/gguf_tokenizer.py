"""Rebuild a Hugging Face tokenizer (tokenizer.json + tokenizer_config.json) from GGUF metadata.

Only GPT-2 style byte-level BPE vocabularies (`tokenizer.ggml.model == "gpt2"`) are handled,
with the pre-tokenizer variants listed in `_PRE_TOKENIZERS`; anything else is refused with a
message rather than producing a tokenizer that silently splits text differently.
"""

import json
from pathlib import Path
from typing import Any

from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors

from skulk.errors import SkulkError

_TOKEN_CONTROL = 3
_TOKEN_USER_DEFINED = 4

# llama.cpp pre-tokenizer name -> split digits one by one before the GPT-2 regex?
_PRE_TOKENIZERS: dict[str, bool] = {
    "default": False,
    "gpt-2": False,
    "smollm": True,
    "starcoder": True,
    "refact": True,
}


def _pre_tokenizer(pre: str) -> pre_tokenizers.PreTokenizer:
    if pre not in _PRE_TOKENIZERS:
        raise SkulkError(f"GGUF pre-tokenizer {pre!r} is not supported by the converter")
    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    if not _PRE_TOKENIZERS[pre]:
        return byte_level
    return pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True), byte_level])


def _token_name(meta: dict[str, Any], tokens: list[str], key: str) -> str | None:
    token_id = meta.get(f"tokenizer.ggml.{key}_token_id")
    return tokens[int(token_id)] if token_id is not None else None


def build_tokenizer(meta: dict[str, Any]) -> Tokenizer:
    """A `tokenizers.Tokenizer` equivalent to the GGUF's BPE vocabulary and merges."""
    if meta.get("tokenizer.ggml.model") != "gpt2":
        raise SkulkError(
            f"GGUF tokenizer model {meta.get('tokenizer.ggml.model')!r} is not supported "
            "(only GPT-2 style BPE)"
        )
    tokens: list[str] = list(meta["tokenizer.ggml.tokens"])
    merges = [tuple(m.split(" ", 1)) for m in meta["tokenizer.ggml.merges"]]
    bpe = models.BPE(
        vocab={tok: i for i, tok in enumerate(tokens)},
        merges=merges,
        unk_token=_token_name(meta, tokens, "unknown"),
        fuse_unk=False,
        byte_fallback=False,
    )
    tokenizer = Tokenizer(bpe)
    tokenizer.pre_tokenizer = _pre_tokenizer(str(meta.get("tokenizer.ggml.pre", "default")))
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.post_processor = _post_processor(meta, tokens)
    types = list(meta.get("tokenizer.ggml.token_type", []))
    added = [
        AddedToken(tokens[i], special=(t == _TOKEN_CONTROL), normalized=False)
        for i, t in enumerate(types)
        if t in (_TOKEN_CONTROL, _TOKEN_USER_DEFINED)
    ]
    tokenizer.add_tokens(added)
    return tokenizer


def _post_processor(meta: dict[str, Any], tokens: list[str]) -> processors.PostProcessor:
    bos = _token_name(meta, tokens, "bos")
    if not meta.get("tokenizer.ggml.add_bos_token") or bos is None:
        return processors.ByteLevel(trim_offsets=False)
    bos_id = int(meta["tokenizer.ggml.bos_token_id"])
    return processors.TemplateProcessing(
        single=f"{bos}:0 $A:0", pair=f"{bos}:0 $A:0 {bos}:1 $B:1", special_tokens=[(bos, bos_id)]
    )


def special_token_ids(meta: dict[str, Any]) -> dict[str, int]:
    """bos/eos/pad/unk ids present in the metadata, keyed `bos_token_id` etc."""
    out = {}
    for key in ("bos", "eos", "padding", "unknown"):
        value = meta.get(f"tokenizer.ggml.{key}_token_id")
        if value is not None:
            name = {"padding": "pad", "unknown": "unk"}.get(key, key)
            out[f"{name}_token_id"] = int(value)
    return out


def write_tokenizer_files(meta: dict[str, Any], out: Path, *, max_length: int) -> None:
    """Write tokenizer.json, tokenizer_config.json and special_tokens_map.json into `out`."""
    tokenizer = build_tokenizer(meta)
    tokenizer.save(str(out / "tokenizer.json"))
    tokens: list[str] = meta["tokenizer.ggml.tokens"]
    specials = {
        f"{name}_token": _token_name(meta, tokens, key)
        for name, key in (("bos", "bos"), ("eos", "eos"), ("unk", "unknown"), ("pad", "padding"))
        if _token_name(meta, tokens, key) is not None
    }
    config: dict[str, Any] = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        **specials,
        "add_bos_token": bool(meta.get("tokenizer.ggml.add_bos_token", False)),
        "add_eos_token": bool(meta.get("tokenizer.ggml.add_eos_token", False)),
        "clean_up_tokenization_spaces": False,
        "model_max_length": max_length,
    }
    if template := meta.get("tokenizer.chat_template"):
        config["chat_template"] = template
    (out / "tokenizer_config.json").write_text(json.dumps(config, indent=2, ensure_ascii=False))
    (out / "special_tokens_map.json").write_text(json.dumps(specials, indent=2))
