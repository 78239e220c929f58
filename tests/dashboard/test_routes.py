"""In-process checks of the dashboard and config routes (no browser, no cluster)."""

import os
import stat

import pytest
import yaml
from starlette.testclient import TestClient

from skulk.api.app import create_app
from skulk.api.routes_dashboard import normalize_base_path
from skulk.testing.fake_port import FakePort

HTML = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}


class ConfigPort(FakePort):
    def __init__(self):
        super().__init__()
        self.broadcasts = []

    def broadcast_config(self, values):
        self.broadcasts.append(values)


def client(base_path="", port=None):
    app = create_app(port or ConfigPort(), dashboard_base_path=base_path)
    return TestClient(app, raise_server_exceptions=False)


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in [n for n in os.environ if n.startswith("SKULK_")]:
        monkeypatch.delenv(name)
    return tmp_path


def test_index_and_deep_links_serve_the_app():
    c = client()
    for path in ("/", "/cluster", "/chat", "/settings", "/chat/", "/models/"):
        resp = c.get(path, headers=HTML)
        assert resp.status_code == 200 and '<base href="/">' in resp.text, path
        assert 'src="assets/js/main.js"' in resp.text
    assert c.get("/models", headers=HTML).text.startswith("<!doctype html>")


def test_models_path_stays_the_catalog_api_for_clients():
    c = client()
    body = c.get("/models").json()
    assert body["object"] == "list" and body["data"]
    assert c.get("/models", headers={"Accept": "application/json"}).json()["object"] == "list"
    assert "/models" in c.get("/api/openapi.json").json()["paths"]


def test_assets_are_served_with_js_media_type():
    c = client()
    resp = c.get("/assets/js/main.js")
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/javascript")
    assert c.get("/assets/app.css").headers["content-type"].startswith("text/css")


def test_unknown_paths_keep_the_json_404_envelope():
    c = client()
    for path in ("/v1/nope", "/nope", "/state/extra", "/assets/missing.js", "/assets/../routes_dashboard.py",
                 "/assets/%2e%2e/%2e%2e/api/app.py"):
        resp = c.get(path, headers=HTML)
        assert resp.status_code == 404, path
        assert set(resp.json()["error"]) == {"message", "type", "param", "code"}, path


def test_base_path_is_injected_as_base_href():
    assert [normalize_base_path(p) for p in ("", "/", "skulk", "/skulk", "/skulk/", "/a/b/")] == \
        ["/", "/", "/skulk/", "/skulk/", "/skulk/", "/a/b/"]
    text = client("/skulk").get("/chat", headers=HTML).text
    assert '<base href="/skulk/">' in text and '<base href="/">' not in text
    assert '<base href="/x&quot;y/">' in client('/x"y').get("/", headers=HTML).text


def test_get_config_without_a_file(in_tmp):
    body = client().get("/config").json()
    assert body["config"] == {} and body["fileExists"] is False
    assert body["configPath"] == str(in_tmp / "skulk.yaml")
    assert body["effective"]["has_hf_token"] is False and body["effective"]["inference"]["kv_cache_backend"] == "default"
    keys = {f["key"]: f for f in body["fields"]}
    assert keys["api_port"]["kind"] == "integer" and keys["api_port"]["default"] == 52415
    assert keys["inference.kv_cache_backend"]["options"][0] == "default"
    assert keys["model_store"]["kind"] == "section" and keys["bootstrap_peers"]["kind"] == "list"


def test_put_config_writes_validates_and_keeps_the_token(in_tmp):
    (in_tmp / "skulk.yaml").write_text("hf_token: secret\ntracing:\n  retention_days: 3\n")
    port = ConfigPort()
    c = client(port=port)
    assert "hf_token" not in c.get("/config").json()["config"]
    resp = c.put("/config", json={"config": {"tracing": {"retention_days": 9}}})
    assert resp.status_code == 200, resp.text
    assert resp.json()["success"] is True and resp.json()["requiresRestart"] is False
    on_disk = yaml.safe_load((in_tmp / "skulk.yaml").read_text())
    assert on_disk == {"tracing": {"retention_days": 9}, "hf_token": "secret"}
    assert stat.S_IMODE((in_tmp / "skulk.yaml").stat().st_mode) == 0o600
    assert port.broadcasts == [{"tracing": {"retention_days": 9}}]
    assert c.get("/config").json()["effective"]["has_hf_token"] is True

    raw = c.put("/config", json={"api_port": 8000, "cluster": {"namespace": "lab"}}).json()
    assert raw["requiresRestart"] is True and set(raw["restartKeys"]) == {"api_port", "cluster.namespace"}


def test_put_config_rejects_bad_values_naming_the_key(in_tmp):
    c = client()
    for body, param in (({"api_port": 70000}, "api_port"), ({"cluster": {"namespac": "x"}}, "cluster.namespac"),
                        ({"inference": {"kv_cache_backend": "nope"}}, "inference.kv_cache_backend"),
                        ({"model_store": {"store_host": "h"}}, "model_store.store_path"), ([1, 2], "config")):
        resp = c.put("/config", json=body)
        assert resp.status_code == 422, body
        error = resp.json()["error"]
        assert error["param"] == param and param in error["message"], error
    assert not (in_tmp / "skulk.yaml").exists()


def test_the_cluster_secret_is_write_only_and_never_broadcast(in_tmp):
    (in_tmp / "skulk.yaml").write_text("cluster:\n  namespace: lab\n  secret: s3cret-value\n")
    port = ConfigPort()
    c = client(port=port)
    shown = c.get("/config")
    assert "s3cret-value" not in shown.text and shown.json()["config"] == {"cluster": {"namespace": "lab"}}
    # Saving what the page saw keeps the secret in the file, and no other node ever gets it.
    resp = c.put("/config", json={"config": {**shown.json()["config"], "tracing": {"retention_days": 2}}})
    assert resp.status_code == 200, resp.text
    on_disk = yaml.safe_load((in_tmp / "skulk.yaml").read_text())
    assert on_disk["cluster"] == {"namespace": "lab", "secret": "s3cret-value"}
    assert stat.S_IMODE((in_tmp / "skulk.yaml").stat().st_mode) == 0o600
    assert "s3cret-value" not in repr(port.broadcasts) and port.broadcasts[-1] == {
        "cluster": {"namespace": "lab"}, "tracing": {"retention_days": 2}}
