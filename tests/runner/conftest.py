import pytest

from tests.engine.helpers import build_tiny_model

from skulk.types.ids import model_dir_name

from .harness import MODEL_ID


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory):
    """A models dir holding the tiny random llama under <org>--<name>, as ensure_model_dir finds it."""
    root = tmp_path_factory.mktemp("runner-models")
    build_tiny_model(root / model_dir_name(MODEL_ID))
    return root
