"""A short chaos battery on 3 real loopback nodes serving the default model with llama.cpp:
5 faults under load, then no request hung, no instance lost, every node's state the master's."""

import pytest

from skulk.testing.chaos import ENV, run_battery, start_serving_cluster
from skulk.testing.cluster import LocalCluster

pytest.importorskip("llama_cpp")


@pytest.fixture
def cluster(tmp_path):
    models = tmp_path / "models"
    models.mkdir()
    c = LocalCluster(tmp_path, extra_env={**ENV, "SKULK_MODELS_DIR": str(models)})
    try:
        yield c
    finally:
        c.stop_all()


def test_five_faults_on_three_nodes_leave_nothing_hung_lost_or_diverged(cluster):
    nodes = start_serving_cluster(cluster, 3)
    result = run_battery(cluster, nodes, clients=3, faults=5, seed=7, max_requests=400)
    assert result["requests"] > 0 and result["completed"] > 0, result
    assert result["hung"] == 0, result["hung_details"]
    assert result["lost"] == [], result
    assert result["diverged"] == [], result
    assert len(result["faults"]) == 5
    assert all(f["kind"] for f in result["faults"])
