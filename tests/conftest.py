import pytest

DEFAULT_MODEL = "HuggingFaceTB/SmolLM2-135M-Instruct"


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory):
    """The default model converted once, shared by every real-node test that serves it
    (a directory's own conftest may define a different one)."""
    from skulk.models import ensure_model_dir
    root = tmp_path_factory.mktemp("models")
    ensure_model_dir(DEFAULT_MODEL, root, offline=True)
    return root
