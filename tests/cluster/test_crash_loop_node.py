"""A crash-looping deployment on a real node: its model's GGUF file is corrupt, so every runner dies
loading it; after runner.max_restarts crashes the deployment is `failed` with the cause (naming
the file), nothing more is placed, and `deployment.failed` reaches a local webhook receiver."""

import httpx

from skulk.testing.cluster import wait_until
from tests.factories import write_smollm_gguf_card
from tests.webhook_receiver import webhook_receiver

BROKEN = "acme/Broken-GGUF"


def broken_model(models_dir) -> None:
    """A card naming a GGUF file that has llama.cpp's magic and nothing readable after it."""
    (models_dir / "acme--Broken-GGUF").mkdir(parents=True)
    (models_dir / "acme--Broken-GGUF" / "broken.gguf").write_bytes(b"GGUF" + b"\x00" * 64)


def broken_card(home) -> None:
    write_smollm_gguf_card(home, BROKEN, "broken.gguf", size=1_000_000)


def test_a_crash_looping_deployment_fails_with_its_cause_and_deployment_failed_is_sent(cluster, tmp_path):
    models = tmp_path / "models"
    broken_model(models)
    broken_card(tmp_path / "solo")
    cluster.extra_env.update({"SKULK_MODELS_DIR": str(models), "SKULK_DEFAULT_MODEL__AUTO_PLACE": "false",
                              "SKULK_RUNNER__MAX_RESTARTS": "2", "SKULK_SETTLE_GRACE_SECONDS": "2"})
    with webhook_receiver() as rx:
        node = cluster.add_node("solo")
        cluster.wait_ready(node)
        resp = httpx.put(node.url + "/config", json={"config": {"notifications": {"webhook_url": rx.url}}},
                         timeout=10, trust_env=False)
        assert resp.status_code == 200, resp.text
        resp = httpx.post(node.url + "/v1/deployments", json={"model_id": BROKEN, "instance_meta": "LlamaRpc"},
                          timeout=30, trust_env=False)
        assert resp.status_code == 201, resp.text
        dep_id = resp.json()["deployment_id"]

        def failed():
            d = node.get(f"/v1/deployments/{dep_id}")
            return d if d["status"] == "failed" else None

        d = wait_until(failed, 180, interval=0.5, message=f"deployment failed\n{node.log_tail()}")
        assert "runner crashes" in d["reason"] and "broken.gguf" in d["reason"], d["reason"]
        assert d["instances"] == []  # a failed deployment holds nothing and places nothing more
        sent = wait_until(lambda: [b for b in list(rx.bodies) if b.get("event") == "deployment.failed"], 30,
                          message=f"deployment.failed webhook; got {rx.kinds()}")
        assert sent[0]["deployment_id"] == dep_id and sent[0]["model_id"] == BROKEN
        assert "broken.gguf" in sent[0]["message"], sent[0]
