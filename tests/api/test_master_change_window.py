"""Just after a master change this node's view may still lack the instances the new master carried
over: "no instance" is then a retryable 503, not a 404 (in each API's error shape)."""

from starlette.testclient import TestClient

from skulk.api.app import create_app
from skulk.models import DEFAULT_MODEL_ID as M
from skulk.types.state import State
from tests.api_compat.fake_port import ScriptedPort

USER_MSG = [{"role": "user", "content": "hi"}]


class ChangedPort(ScriptedPort):
    def __init__(self, since: float | None):
        super().__init__()
        self.state = State()  # no instance in view
        self._since = since

    def since_master_change_s(self) -> float | None:
        return self._since


def chat(port) -> "object":
    c = TestClient(create_app(port), raise_server_exceptions=False, backend="trio")
    return c.post("/v1/chat/completions", json={"model": M, "messages": USER_MSG})


def test_no_instance_is_404_on_a_node_that_never_changed_masters_or_long_after():
    for since in (None, 60.0):
        resp = chat(ChangedPort(since))
        assert resp.status_code == 404 and resp.json()["error"]["code"] == "model_not_found", resp.text


def test_no_instance_right_after_a_master_change_is_a_retryable_503():
    resp = chat(ChangedPort(3.0))
    assert resp.status_code == 503, resp.text
    assert resp.headers["Retry-After"] == "2" and "changed masters" in resp.json()["error"]["message"]


def test_the_ollama_and_anthropic_shapes_too():
    c = TestClient(create_app(ChangedPort(1.0)), raise_server_exceptions=False, backend="trio")
    anthropic = c.post("/v1/messages", json={"model": M, "max_tokens": 5, "messages": USER_MSG})
    assert anthropic.status_code == 503 and anthropic.json()["type"] == "error", anthropic.text
    ollama = c.post("/ollama/api/chat", json={"model": M, "messages": USER_MSG, "stream": False})
    assert ollama.status_code == 503 and "error" in ollama.json(), ollama.text
