"""Maintenance routes in-process: commands go through the master's real deciders (MasterPort)."""

from starlette.testclient import TestClient

from skulk.api.app import create_app
from skulk.types.topology import TopologySnapshot
from tests.api.test_projects_routes import MasterPort, add_key


def setup():
    port = MasterPort()
    port.state = port.state.model_copy(update={"topology": TopologySnapshot(nodes=["a", "b"])})
    admin = add_key(port, "adm", "admin")
    user = add_key(port, "u1", "user")
    client = TestClient(create_app(port), raise_server_exceptions=False, backend="trio")
    return port, client, {"Authorization": f"Bearer {admin}"}, {"Authorization": f"Bearer {user}"}


def test_cordon_drain_uncordon_are_admin_only_and_show_in_state():
    port, client, admin, user = setup()
    r = client.post("/v1/nodes/a/cordon", headers=admin)
    assert r.status_code == 200, r.text
    assert r.json()["maintenance"] == "cordoned" and port.state.node_maintenance == {"a": "cordoned"}
    assert client.get("/state", headers=admin).json()["nodeMaintenance"] == {"a": "cordoned"}
    r = client.post("/v1/nodes/b/drain", headers=admin)
    assert r.json()["draining"] is True and port.state.node_maintenance["b"] == "draining"
    listed = client.get("/v1/nodes/maintenance", headers=admin).json()["data"]
    assert [(n["node_id"], n["maintenance"]) for n in listed] == [("a", "cordoned"), ("b", "draining")]
    assert client.post("/v1/nodes/a/uncordon", headers=admin).json()["cordoned"] is False
    assert port.state.node_maintenance == {"b": "draining"}
    assert client.post("/v1/nodes/b/cordon", headers=user).status_code == 403
    assert client.post("/v1/nodes/ghost/cordon", headers=admin).status_code == 404
    assert client.post("/v1/nodes/ghost/uncordon", headers=admin).status_code == 404
