"""Pause/resume by hand, in-process through the master's real deciders, and the request-side wake."""

import trio
from starlette.testclient import TestClient

from skulk.api.app import create_app
from skulk.api.routes_warm import waking, wake_if_cold
from skulk.types import commands as cmd
from skulk.types.deployments import Deployment, DeploymentStatus
from tests.api.test_projects_routes import MasterPort, add_key
from tests.factories import card, ring_instance

S = DeploymentStatus


def with_deployment(port: MasterPort, status=S.ready, instance=True) -> None:
    dep = Deployment(deployment_id="d1", model_id="org/tiny", model_card=card(), status=status)
    instances = {"i1": ring_instance("i1", ["a"]).model_copy(update={"deployment_id": "d1"})} if instance else {}
    port.state = port.state.model_copy(update={"deployments": {"d1": dep}, "instances": instances})


def test_pause_and_resume_by_hand_are_admin_only_and_404_for_unknown():
    port = MasterPort()
    with_deployment(port)
    admin = {"Authorization": f"Bearer {add_key(port, 'adm', 'admin')}"}
    user = {"Authorization": f"Bearer {add_key(port, 'u1', 'user')}"}
    client = TestClient(create_app(port), raise_server_exceptions=False, backend="trio")
    r = client.post("/v1/deployments/d1/pause", headers=admin)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "paused" and port.state.deployments["d1"].reason == "paused by hand"
    assert waking(port.state, "org/tiny") and not waking(port.state, "org/tiny", exclude=("i1",))
    r = client.post("/v1/deployments/d1/resume", headers=admin)
    assert r.json()["status"] == "pending" and not waking(port.state, "org/tiny")
    assert client.post("/v1/deployments/d1/pause", headers=user).status_code == 403
    assert client.post("/v1/deployments/nope/pause", headers=admin).status_code == 404


def test_a_request_for_a_cold_paused_deployment_wakes_it_and_waits_for_its_placement():
    port = MasterPort()
    with_deployment(port, status=S.paused, instance=False)
    placed = ring_instance("i2", ["a"]).model_copy(update={"deployment_id": "d1"})

    async def main():
        async with trio.open_nursery() as nursery:
            nursery.start_soon(wake_if_cold, port, "org/tiny")
            await trio.sleep(0.3)  # the reconciler's placement, a moment after the wake
            assert port.state.deployments["d1"].status is S.pending
            port.state = port.state.model_copy(update={"instances": {"i2": placed}})
    trio.run(main)
    assert [c.paused for c in port.sent_of(cmd.SetDeploymentPaused)] == [False]


def test_an_embeddings_request_wakes_a_cold_paused_deployment_too(monkeypatch):
    import skulk.api.routes_warm as routes_warm

    monkeypatch.setattr(routes_warm, "COLD_WAKE_WAIT_S", 0.3)  # nobody places it here: the wait runs out
    port = MasterPort()
    with_deployment(port, status=S.paused, instance=False)
    client = TestClient(create_app(port), raise_server_exceptions=False, backend="trio")
    r = client.post("/v1/embeddings", json={"model": "org/tiny", "input": "cat"})
    assert r.status_code == 503 and "waking from cold" in r.json()["error"]["message"], r.text
    assert [c.paused for c in port.sent_of(cmd.SetDeploymentPaused)] == [False]
