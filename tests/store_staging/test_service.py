"""StoreService wiring (roles, per-node staging settings, search dirs) and the /store/* routes."""

from pathlib import Path

import pytest
import trio
from starlette.testclient import TestClient

from skulk.api.app import create_app
from skulk.config import Settings, resolve_paths
from skulk.models import find_model_dir
from skulk.store.client import LocalBackend
from skulk.store.errors import StoreNotConfigured, StoreUnreachable
from skulk.store.service import StoreService
from skulk.testing.cluster import free_port
from skulk.types.state import State
from tests.api.test_api_app import FakePort
from tests.store_staging.conftest import TINY, write_tiny_model


class Quiet:
    """Router and telemetry stand-ins: an empty cluster."""

    state = State()
    sent: list = []

    def send_event(self, event):
        self.sent.append(event)

    async def send_command(self, command):
        self.sent.append(command)

    def live(self, now, timeout):
        return {}


def service(tmp_path: Path, name: str, store: dict | None, node_id: str = "id-x") -> StoreService:
    settings = Settings(node_name=name, home=tmp_path / name, model_store=store)
    paths = resolve_paths(settings, {}, user_home=tmp_path)
    return StoreService(settings, paths, node_id=node_id, friendly_name=name, router=Quiet(), telemetry=Quiet(),
                        local_instances=dict, send_command=Quiet().send_command)


def store_cfg(store_root: Path, port: int = 58080, **extra) -> dict:
    return {"store_host": "s0", "store_http_host": "127.0.0.1", "store_port": port, "store_path": str(store_root),
            "staging": {"node_cache_path": "staging", "staging_keep_recent_gb": 5},
            "node_overrides": {"n1": {"staging": {"staging_keep_recent_gb": 0}}}, **extra}


def test_roles_search_dirs_and_per_node_staging(tmp_path, store_root):
    host = service(tmp_path, "s0", store_cfg(store_root))
    worker = service(tmp_path, "n1", store_cfg(store_root))
    other = service(tmp_path, "n2", store_cfg(store_root))
    assert host.host is not None and worker.host is None
    assert isinstance(host.backend(), LocalBackend) and worker.backend().url == "http://127.0.0.1:58080"
    assert host.extra_model_dirs == (tmp_path / "s0" / "staging", store_root)
    assert worker.extra_model_dirs == (tmp_path / "n1" / "staging",)
    assert worker.staging.staging_keep_recent_gb == 0 and other.staging.staging_keep_recent_gb == 5
    assert find_model_dir(TINY, tmp_path / "none", host.extra_model_dirs) == store_root / "org--tiny"


def test_a_disabled_or_absent_store_does_nothing_and_says_not_configured(tmp_path, store_root):
    for svc in (service(tmp_path, "a", None), service(tmp_path, "b", {**store_cfg(store_root), "enabled": False})):
        assert svc.extra_model_dirs == ()
        with pytest.raises(StoreNotConfigured, match="Store not configured"):
            svc.backend()
        trio.run(svc.prepare_model, TINY)  # no-op


def test_prepare_model_skips_staging_for_local_models_and_fails_clearly_when_the_store_is_down(tmp_path):
    down = store_cfg(tmp_path / "nowhere", port=free_port())
    svc = service(tmp_path, "n1", down)
    write_tiny_model(svc._models_dir / "org--local")
    trio.run(svc.prepare_model, "org/local")  # already on this node: the store is not needed
    with pytest.raises(StoreUnreachable, match="Store unreachable"):
        trio.run(svc.prepare_model, TINY)
    assert not (svc.staging_root / "org--tiny").exists()


def client(svc: StoreService | None) -> TestClient:
    app = create_app(FakePort())
    if svc is not None:
        app.state.store = svc
    return TestClient(app, raise_server_exceptions=False, backend="trio")


def test_store_routes_on_the_store_host(tmp_path, store_root):
    c = client(service(tmp_path, "s0", store_cfg(store_root)))
    assert c.get("/store/health").json()["storePath"] == str(store_root)
    assert [e["model_id"] for e in c.get("/store/registry").json()["entries"]] == [TINY]
    assert c.get("/store/downloads").json() == {"downloads": []}
    assert c.get(f"/store/models/{TINY}/download/status").json()["status"] == "completed"
    assert c.delete(f"/store/models/{TINY}").json() == {"modelId": TINY, "deleted": True}
    assert c.delete(f"/store/models/{TINY}").status_code == 404
    assert not (store_root / "org--tiny").exists()
    storage = c.get("/store/storage").json()
    assert storage["nodeId"] == "id-x" and storage["stagedModels"] == [] and "diskFreeBytes" in storage


def test_store_routes_say_not_configured_or_unreachable(tmp_path):
    unset = client(service(tmp_path, "a", None))
    resp = unset.get("/store/health")
    assert resp.status_code == 503 and resp.json()["error"]["message"] == "Store not configured"
    assert unset.post("/store/purge-staging", json={}).status_code == 503
    assert unset.get("/store/storage").status_code == 200
    down = client(service(tmp_path, "n1", store_cfg(tmp_path / "x", port=free_port())))
    resp = down.get("/store/registry")
    assert resp.status_code == 503 and resp.json()["error"]["message"].startswith("Store unreachable")
    assert client(None).get("/store/health").status_code == 503


def test_purge_is_sent_as_a_command_to_the_master(tmp_path, store_root):
    svc = service(tmp_path, "n1", store_cfg(store_root))
    c = client(svc)
    resp = c.post("/store/purge-staging", json={"modelId": TINY})
    assert resp.status_code == 200 and resp.json()["commandId"]
    event = Quiet.sent[-1]
    assert type(event).__name__ == "PurgeStaging" and event.model_id == TINY
    assert c.post("/store/purge-staging").status_code == 200 and Quiet.sent[-1].model_id is None
    assert c.post("/store/purge-staging", content=b"{bad").status_code == 400


def test_openapi_lists_the_store_routes():
    paths = client(None).get("/api/openapi.json").json()["paths"]
    for path in ("/store/health", "/store/registry", "/store/downloads", "/store/models/{model_id}/download",
                 "/store/models/{model_id}/download/status", "/store/models/{model_id}", "/store/purge-staging",
                 "/store/storage"):
        assert path in paths, path
