import pytest

from skulk.testing.cluster import LocalCluster

DEFAULT_MODEL = "HuggingFaceTB/SmolLM2-135M-Instruct"


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory):
    """One converted default model shared by every node of every serving test."""
    from skulk.models import ensure_model_dir
    root = tmp_path_factory.mktemp("models")
    ensure_model_dir(DEFAULT_MODEL, root, offline=True)
    return root


@pytest.fixture
def cluster(tmp_path, models_dir):
    c = LocalCluster(tmp_path, extra_env={"SKULK_MODELS_DIR": str(models_dir),
                                          "SKULK_SETTLE_GRACE_SECONDS": "5"})
    try:
        yield c
    finally:
        c.stop_all()
