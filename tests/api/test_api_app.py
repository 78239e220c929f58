"""In-process API checks with a fake cluster port (the real thing is covered by cluster tests)."""

from starlette.testclient import TestClient

from skulk.api.app import create_app
from skulk.testing.fake_port import FakePort


def client():
    return TestClient(create_app(FakePort()), raise_server_exceptions=False)


def test_openapi_describes_every_route():
    doc = client().get("/api/openapi.json").json()
    for path in ("/node_id", "/state", "/events", "/v1/diagnostics/node", "/place_instance",
                 "/instance/{instance_id}", "/instance/previews", "/v1/models", "/v1/chat/completions"):
        assert path in doc["paths"], path
    assert "ErrorResponse" in doc["components"]["schemas"]


def test_errors_use_the_envelope():
    c = client()
    body = c.post("/place_instance", content=b"{not json").json()
    assert set(body["error"]) == {"message", "type", "param", "code"}
    resp = c.post("/place_instance", json={"model_id": "nobody/nothing"})
    assert resp.status_code == 404 and "nobody/nothing" in resp.json()["error"]["message"]
    resp = c.post("/v1/chat/completions", json={"model": "m", "messages": "nope"})
    assert resp.status_code == 422 and resp.json()["error"]["param"].startswith("messages")
    resp = c.get("/instance/unknown")
    assert resp.status_code == 404 and resp.json()["error"]["message"] == "Instance not found"
    assert c.post("/v1/cancel/xyz").status_code == 404


def test_node_id_state_and_models():
    c = client()
    assert c.get("/node_id").json() == "12D3KooWfake"
    state = c.get("/state").json()
    assert state["lastEventAppliedIdx"] == -1 and "nodeHealth" in state and "nodeIdentities" in state
    ids = [m["id"] for m in c.get("/v1/models").json()["data"]]
    assert "HuggingFaceTB/SmolLM2-135M-Instruct" in ids
