"""One real node process on 127.0.0.1 with a model store: POST /store/purge-staging removes the
idle copy the stager made and leaves a user's folder (and a symlink out) under the staging path;
path-like model ids get a 400 with the error envelope and create nothing."""

import pytest
import yaml

from skulk.store.inventory import write_marker
from skulk.testing.cluster import LocalCluster, free_port, wait_until


@pytest.fixture
def cluster(tmp_path):
    c = LocalCluster(tmp_path / "nodes", extra_env={"SKULK_DEFAULT_MODEL__AUTO_PLACE": "false"})
    try:
        yield c
    finally:
        c.stop_all()


def test_purge_on_a_real_node_keeps_foreign_folders_and_refuses_path_like_ids(cluster, tmp_path):
    node = cluster.add_node("s0", start=False, extra_args=["--force-master"])
    staging = node.home / "staging"
    idle = staging / "acme--idle"
    idle.mkdir(parents=True)
    (idle / "config.json").write_text("{}")
    write_marker(idle, "acme/idle")
    foreign = staging / "acme--mine"  # named like a model, but the user's: no marker
    foreign.mkdir()
    (foreign / "weights.bin").write_bytes(b"w" * 64)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("keep")
    (staging / "acme--link").symlink_to(outside, target_is_directory=True)
    config = {"model_store": {"store_host": "s0", "store_http_host": "127.0.0.1", "store_port": free_port(),
                              "store_path": str(tmp_path / "store"),
                              "staging": {"node_cache_path": "staging", "staging_keep_recent_gb": 1.0}}}
    (node.home / "skulk.yaml").write_text(yaml.safe_dump(config))
    node.start()
    cluster.wait_ready(node)

    storage = wait_until(lambda: node.get("/store/storage"), 20, message="storage report")
    assert [m["modelId"] for m in storage["stagedModels"]] == ["acme/idle"]
    assert set(storage["unmanagedEntries"]) == {"acme--mine", "acme--link"}

    for path, body in (("/place_instance", {"model_id": "../../etc"}),
                       ("/store/purge-staging", {"modelId": "../acme--mine"}),
                       ("/store/models/..%2F..%2Fetc/download", {})):
        resp = node.post(path, body)
        assert resp.status_code == 400, (path, resp.text)
        assert resp.json()["error"]["param"] == "model_id"
    assert not (tmp_path / "etc").exists() and not (node.home.parent / "etc").exists()

    wait_until(lambda: node.post("/store/purge-staging", {}).status_code == 200, 20, message="purge accepted")
    wait_until(lambda: not idle.exists(), 20, message="the idle staged copy is purged")
    assert (foreign / "weights.bin").read_bytes() == b"w" * 64
    assert (staging / "acme--link").is_symlink() and (outside / "keep.txt").read_text() == "keep"
    assert node.alive()
