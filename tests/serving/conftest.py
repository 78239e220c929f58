import pytest

from skulk.testing.cluster import LocalCluster

DEFAULT_MODEL = "HuggingFaceTB/SmolLM2-135M-Instruct"


@pytest.fixture
def cluster(tmp_path, models_dir):
    c = LocalCluster(tmp_path, extra_env={"SKULK_MODELS_DIR": str(models_dir),
                                          "SKULK_SETTLE_GRACE_SECONDS": "5"})
    try:
        yield c
    finally:
        c.stop_all()
