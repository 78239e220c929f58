"""Deployment routes through the real app in-process: commands go through the master's real deciders
into the port's state (a one-node cluster), so each answer shows what a node would."""

from datetime import datetime, timezone

from starlette.testclient import TestClient

from skulk.api.app import create_app
from skulk.errors import NotFound
from skulk.master.dispatch import DecideContext, decide
from skulk.state.apply import apply_event
from skulk.types import commands as cmd
from skulk.types import events as ev
from skulk.types.node import NetworkInterfaceInfo, NodeNetworkInterfaces
from skulk.types.runners import RunnerReady
from tests.api.test_projects_routes import MasterPort, add_key
from tests.factories import card
from tests.master.test_placement_builders import GIB, memory

MODEL = "org/tiny"


class Catalog:
    def __init__(self, *cards):
        self.cards = {c.model_id: c for c in cards}

    def get(self, model_id):
        return self.cards.get(model_id)

    def require(self, model_id):
        if model_id not in self.cards:
            raise NotFound(f"model {model_id} not found")
        return self.cards[model_id]

    def all(self):
        return list(self.cards.values())


class PlacingPort(MasterPort):
    """MasterPort with one live node `a` of 64 GiB, so placement has somewhere to go."""

    def node_memory(self) -> dict:
        return {"a": memory(64 * GIB)}

    def node_names(self) -> dict:
        return {"a": "alpha"}

    async def send_command(self, command) -> None:
        self.sent.append(command)
        ctx = DecideContext(now=datetime.now(timezone.utc), sender=self.node_id, new_id=lambda: next(self._ids),
                            node_memory=self.node_memory(), node_names=self.node_names())
        try:
            events = decide(self.state, command, ctx)
        except Exception:  # noqa: BLE001 - the master refuses silently; the route's wait notices
            return
        for e in events:
            self.state = apply_event(self.state, e)


def setup():
    port = PlacingPort()
    port.catalog = Catalog(card(MODEL))
    iface = NodeNetworkInterfaces(ifaces=[NetworkInterfaceInfo(name="lo", ip_address="127.0.0.1")])
    port.state = apply_event(port.state, ev.NodeGatheredInfo(node_id="a", when=datetime.now(timezone.utc), info=iface))
    admin = add_key(port, "adm", "admin")
    user = add_key(port, "u1", "user")
    client = TestClient(create_app(port), raise_server_exceptions=False, backend="trio")
    return port, client, {"Authorization": f"Bearer {admin}"}, {"Authorization": f"Bearer {user}"}


def make_ready(port: PlacingPort) -> None:
    for inst in port.state.instances.values():
        for rid in inst.shard_assignments.runner_to_shard:
            port.state = apply_event(port.state, ev.RunnerStatusUpdated(runner_id=rid, runner_status=RunnerReady()))


def test_create_list_get_and_delete_a_deployment():
    port, client, admin, user = setup()
    r = client.post("/v1/deployments", headers=admin, json={"model_id": MODEL, "lease_seconds": 600})
    assert r.status_code == 201, r.text
    body = r.json()
    dep_id = body["deployment_id"]
    assert body["status"] == "starting" and body["replicas"] == 1 and body["ready_replicas"] == 0
    assert body["instances"][0]["nodes"] == [{"node_id": "a", "name": "alpha"}] and not body["instances"][0]["ready"]
    assert 590 < body["expires_in_seconds"] <= 600
    make_ready(port)
    [listed] = client.get("/v1/deployments", headers=admin).json()["data"]
    assert listed["deployment_id"] == dep_id and listed["instances"][0]["ready"] and listed["ready_replicas"] == 1
    assert client.get(f"/v1/deployments/{dep_id}", headers=admin).json()["model_id"] == MODEL
    assert client.delete(f"/v1/deployments/{dep_id}", headers=admin).json() == {"deployment_id": dep_id, "deleted": True}
    assert not port.state.deployments and not port.state.instances


def test_unknown_ids_bad_bodies_and_users_are_refused():
    port, client, admin, user = setup()
    for method, path in (("GET", "/v1/deployments/nope"), ("DELETE", "/v1/deployments/nope"),
                         ("POST", "/v1/deployments/nope/restart")):
        r = client.request(method, path, headers=admin)
        assert r.status_code == 404 and r.json()["error"]["message"].startswith("Deployment not found"), (method, path)
    assert client.post("/v1/deployments/nope/extend", headers=admin, json={"seconds": 5}).status_code == 404
    for bad in ({"model_id": "../x"}, {"model_id": MODEL, "replicas": 0}, {"model_id": MODEL, "bogus": 1},
                {"model_id": MODEL, "priority": "urgent"}, {"model_id": MODEL, "lease_seconds": -1}):
        assert client.post("/v1/deployments", headers=admin, json=bad).status_code in (400, 422), bad
    assert client.post("/v1/deployments", headers=admin, json={"model_id": "org/unknown"}).status_code == 404
    assert client.post("/v1/deployments", headers=user, json={"model_id": MODEL}).status_code == 403
    assert client.get("/v1/deployments", headers=user).status_code == 403
    assert not port.sent_of(cmd.CreateDeployment)


def test_extend_and_restart():
    port, client, admin, user = setup()
    dep_id = client.post("/v1/deployments", headers=admin, json={"model_id": MODEL, "lease_seconds": 60}).json()[
        "deployment_id"]
    before = port.state.deployments[dep_id].expires_at
    r = client.post(f"/v1/deployments/{dep_id}/extend", headers=admin, json={"seconds": 120})
    assert r.status_code == 200, r.text
    assert (port.state.deployments[dep_id].expires_at - before).total_seconds() == 120
    assert 170 < r.json()["expires_in_seconds"] <= 180
    old = set(port.state.instances)
    assert client.post(f"/v1/deployments/{dep_id}/restart", headers=admin).json()["restarted"]
    assert not (set(port.state.instances) & old)  # its instances were replaced (the reconciler places anew)
    no_lease = client.post("/v1/deployments", headers=admin, json={"model_id": MODEL}).json()["deployment_id"]
    r = client.post(f"/v1/deployments/{no_lease}/extend", headers=admin, json={"seconds": 5})
    assert r.status_code == 400 and "no lease" in r.json()["error"]["message"]


def test_place_instance_creates_a_one_replica_deployment():
    port, client, admin, user = setup()
    r = client.post("/place_instance", headers=admin, json={"model_id": MODEL})
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) >= {"message", "command_id", "model_card", "deployment_id"}
    d = port.state.deployments[body["deployment_id"]]
    assert d.replicas == 1 and d.lease_seconds is None
    [inst] = port.state.instances.values()
    assert inst.deployment_id == d.deployment_id
