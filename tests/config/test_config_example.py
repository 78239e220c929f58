"""The committed skulk.yaml.example and docs/configuration.md match the Settings model."""

import importlib.util
from pathlib import Path

import yaml

from skulk.config import Settings, example_yaml, iter_fields, load_settings

REPO_ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = REPO_ROOT / "skulk.yaml.example"
DOCS = REPO_ROOT / "docs" / "configuration.md"
FIX = "run: python scripts/gen_config_docs.py"


def _docs_script():
    spec = importlib.util.spec_from_file_location(
        "gen_config_docs", REPO_ROOT / "scripts" / "gen_config_docs.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_example_is_generated_text() -> None:
    assert EXAMPLE.read_text() == example_yaml(), FIX


def test_committed_docs_are_generated_text() -> None:
    assert DOCS.read_text() == _docs_script().config_markdown(), FIX


def test_example_parses_to_default_settings() -> None:
    assert load_settings(EXAMPLE, {}) == Settings()


def test_every_key_is_described_and_in_the_example() -> None:
    text = example_yaml()
    for entry in iter_fields():
        assert entry.info.description, f"{entry.dotted} has no description"
        assert f"{entry.path[-1]}:" in text
        if entry.env_name:
            assert entry.env_name in text


def test_commented_model_store_block_is_a_valid_section() -> None:
    # Uncommenting the model_store example must give a working store section.
    lines = example_yaml().splitlines()
    start = lines.index("# model_store:")
    end = lines.index("model_store: null")
    block = "\n".join(line.removeprefix("# ") for line in lines[start:end])
    section = yaml.safe_load(block)
    settings = Settings.model_validate(section)
    assert settings.model_store is not None
    assert settings.model_store.store_host == "mac-studio.local"
