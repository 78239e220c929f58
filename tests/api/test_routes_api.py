"""GET/PUT /v1/routes and route-name requests through every API flavour, in process."""

import json

from starlette.testclient import TestClient

from skulk.api.app import create_app
from skulk.models import DEFAULT_MODEL_ID as M
from skulk.types import commands as cmd
from skulk.types.events import ApiKeyCreated, IndexedEvent
from tests.api.test_auth import ADMIN, ADMIN_REC, USER, USER_REC, bearer, record
from tests.api_compat.fake_port import ScriptedPort

USER_MSG = [{"role": "user", "content": "hi"}]
ROUTE = {"name": "fast", "models": ["org/not-running", M]}


class RoutesPort(ScriptedPort):
    """A node whose cluster config changes as the master would apply a SetClusterConfig."""

    def __init__(self, routes=(ROUTE,), records=()):
        super().__init__()
        config = {"routes": list(routes)} if routes is not None else None
        self.state = self.state.model_copy(update={"cluster_config": config,
                                                   "api_keys": {r.id: r for r in records}})
        self.broadcasts: list[dict] = []
        if records:
            self.history = [IndexedEvent(idx=0, event=ApiKeyCreated(record=records[0]))]

    async def broadcast_config(self, values: dict) -> None:
        self.broadcasts.append(values)
        self.state = self.state.model_copy(update={"cluster_config": values})


def client(port) -> TestClient:
    return TestClient(create_app(port), raise_server_exceptions=False, backend="trio")


def test_get_lists_routes_and_capabilities_with_the_model_each_goes_to():
    body = client(RoutesPort()).get("/v1/routes").json()
    assert body["routes"] == [{"name": "fast", "kind": "route", "models": ROUTE["models"], "served_by": M}]
    text = next(c for c in body["capabilities"] if c["name"] == "capability:text")
    assert text["models"] == [M] and text["served_by"] == M
    assert any(c["name"] == "capability:embedding" for c in body["capabilities"])  # from the catalog's cards


def test_put_broadcasts_the_cluster_config_keeping_its_other_keys():
    port = RoutesPort()
    port.state = port.state.model_copy(update={"cluster_config": {"routes": [ROUTE], "tracing": {"retention_days": 3}}})
    new = [{"name": "big", "models": [M]}, {"name": "small", "models": ["org/x", M]}]
    resp = client(port).put("/v1/routes", json={"routes": new})
    assert resp.status_code == 200 and resp.json()["applied"] is True
    assert port.broadcasts == [{"routes": new, "tracing": {"retention_days": 3}}]
    assert [r["name"] for r in client(port).get("/v1/routes").json()["routes"]] == ["big", "small"]


def test_put_refuses_bad_bodies_with_400():
    c = client(RoutesPort())
    for body in ({"routes": [{"name": "a", "models": [M]}, {"name": "a", "models": [M]}]},
                 {"routes": [{"name": "capability:x", "models": [M]}]}, {"routes": "nope"},
                 {"routes": [{"name": "a"}]}, {"other": 1}, [1]):
        resp = c.put("/v1/routes", json=body)
        assert resp.status_code == 400, (body, resp.text)
        assert resp.json()["error"]["param"] == "routes"
    assert c.put("/v1/routes", content=b"{nope", headers={"content-type": "application/json"}).status_code == 400


def test_openai_chat_on_a_route_is_served_and_answered_by_the_first_model_with_an_instance():
    port = RoutesPort()
    c = client(port)
    body = c.post("/v1/chat/completions", json={"model": "fast", "messages": USER_MSG}).json()
    assert body["model"] == M and body["choices"][0]["message"]["content"] == "Hello!"
    assert port.sent_of(cmd.GenerateText)[-1].task_params.model == M
    with c.stream("POST", "/v1/chat/completions", json={"model": "capability:text", "messages": USER_MSG,
                                                        "stream": True}) as r:
        chunks = [json.loads(line[6:]) for line in r.iter_lines() if line.startswith("data: {")]
    assert chunks and {ch["model"] for ch in chunks} == {M}


def test_anthropic_responses_and_ollama_answer_with_the_served_model():
    c = client(RoutesPort())
    msg = c.post("/v1/messages", json={"model": "fast", "max_tokens": 5, "messages": USER_MSG}).json()
    assert msg["model"] == M, msg
    resp = c.post("/v1/responses", json={"model": "fast", "input": "hi"}).json()
    assert resp["model"] == M, resp
    ollama = c.post("/ollama/api/chat", json={"model": "fast", "messages": USER_MSG, "stream": False}).json()
    assert ollama["model"] == M, ollama


def test_a_route_without_any_running_model_is_404_naming_the_route():
    c = client(RoutesPort(routes=[{"name": "gone", "models": ["org/a", "org/b"]}]))
    resp = c.post("/v1/chat/completions", json={"model": "gone", "messages": USER_MSG})
    assert resp.status_code == 404 and "gone" in resp.json()["error"]["message"]
    assert resp.json()["error"]["code"] == "model_not_found"


def test_v1_models_lists_routes_as_model_objects():
    data = client(RoutesPort()).get("/v1/models").json()["data"]
    route = next(d for d in data if d["id"] == "fast")
    assert route["route"] is True and route["models"] == ROUTE["models"] and route["served_by"] == M
    assert any(d["id"] == "capability:text" and d["route_kind"] == "capability" for d in data)
    assert any(d["id"] == M and "route" not in d for d in data)


DEFAULT_ONLY, DEFAULT_ONLY_REC = record("def", "user", models=[M])
OTHER_ONLY, OTHER_ONLY_REC = record("oth", "user", models=["other/model"])


def test_the_key_allow_list_applies_to_the_resolved_model():
    c = client(RoutesPort(records=(ADMIN_REC, USER_REC, DEFAULT_ONLY_REC, OTHER_ONLY_REC)))
    ok = c.post("/v1/chat/completions", json={"model": "fast", "messages": USER_MSG}, headers=bearer(DEFAULT_ONLY))
    assert ok.status_code == 200 and ok.json()["model"] == M  # the route name needs no place in the list
    refused = c.post("/v1/chat/completions", json={"model": "fast", "messages": USER_MSG}, headers=bearer(OTHER_ONLY))
    assert refused.status_code == 403 and "fast" in refused.json()["error"]["message"]
    assert c.put("/v1/routes", json={"routes": []}, headers=bearer(USER)).status_code == 403
    assert c.put("/v1/routes", json={"routes": []}, headers=bearer(ADMIN)).status_code == 200
    assert c.get("/v1/routes", headers=bearer(USER)).status_code == 200


def test_ollama_tags_list_routes_that_can_serve():
    names = [m["name"] for m in client(RoutesPort()).get("/ollama/api/tags").json()["models"]]
    assert M in names and "fast" in names and not any(n.startswith("capability:") for n in names)
    gone = client(RoutesPort(routes=[{"name": "gone", "models": ["org/a"]}])).get("/ollama/api/tags").json()
    assert "gone" not in [m["name"] for m in gone["models"]]  # a route that cannot serve is not listed


def test_capability_embedding_serves_openai_and_ollama_embeddings_with_the_served_model():
    from tests.api_ollama.fake_port import EMBED_MODEL
    from tests.api_ollama.fake_port import ScriptedPort as EmbedPort
    port = EmbedPort()
    c = client(port)
    body = c.post("/v1/embeddings", json={"model": "capability:embedding", "input": ["a", "b"]}).json()
    assert body["model"] == EMBED_MODEL and len(body["data"]) == 2
    assert port.sent_of(cmd.EmbedText)[-1].task_params.model == EMBED_MODEL
    ollama = c.post("/ollama/api/embed", json={"model": "capability:embedding", "input": "a"}).json()
    assert ollama["model"] == EMBED_MODEL
    chat = c.post("/ollama/api/chat", json={"model": "capability:text", "stream": False,
                                            "messages": [{"role": "user", "content": "hi"}]}).json()
    assert chat["model"] == M
