"""Request priority on the API node: header, project, ceiling, 400 in each API's shape; the
master copies it onto the task."""

import pytest
from starlette.testclient import TestClient

from skulk.api.app import create_app
from skulk.api.priority import effective_priority
from skulk.api.routes_projects import CreateProjectParams
from skulk.master.serving import decide_generate_text
from skulk.models import DEFAULT_MODEL_ID as M
from skulk.types import commands as cmd
from skulk.types.access import ApiKeyRecord, Principal, hash_key, new_key, new_salt
from skulk.types.events import ApiKeyCreated, IndexedEvent
from skulk.types.projects import ProjectPolicy
from skulk.types.tasks import ChatMessage, TextGenerationTaskParams
from tests.api.test_auth import ADMIN, ADMIN_REC, NOW, bearer
from tests.api_compat.fake_port import ScriptedPort

CHAT = {"model": M, "messages": [{"role": "user", "content": "hi"}]}


def keyed(key_id: str, project: str | None) -> tuple[str, ApiKeyRecord]:
    key, salt = new_key(key_id), new_salt()
    return key, ApiKeyRecord(id=key_id, name=key_id, role="user", project=project, created_at=NOW,
                             salt=salt, key_hash=hash_key(key, salt))


LOW_KEY, LOW_REC = keyed("lowk", "batch")
HIGH_KEY, HIGH_REC = keyed("highk", "vip")
PLAIN_KEY, PLAIN_REC = keyed("plain", None)


def port(with_keys: bool) -> ScriptedPort:
    p = ScriptedPort()
    if with_keys:
        records = {r.id: r for r in (ADMIN_REC, LOW_REC, HIGH_REC, PLAIN_REC)}
        projects = {"batch": ProjectPolicy(name="batch", priority="low"), "vip": ProjectPolicy(name="vip", priority="high")}
        p.state = p.state.model_copy(update={"api_keys": records, "projects": projects})
        p.history = [IndexedEvent(idx=0, event=ApiKeyCreated(record=ADMIN_REC))]
    return p


def sent_priority(p: ScriptedPort, headers: dict) -> str:
    resp = TestClient(create_app(p), raise_server_exceptions=False, backend="trio").post(
        "/v1/chat/completions", json=CHAT, headers=headers)
    assert resp.status_code == 200, resp.text
    return p.sent_of(cmd.GenerateText)[-1].priority


def test_the_header_sets_the_priority_on_an_open_node():
    p = port(False)
    assert sent_priority(p, {}) == "normal"
    assert sent_priority(p, {"X-Skulk-Priority": "high"}) == "high"
    assert sent_priority(p, {"X-Skulk-Priority": " Low "}) == "low"


def test_a_project_sets_its_keys_priority_and_caps_the_header():
    p = port(True)
    assert sent_priority(p, bearer(LOW_KEY)) == "low"
    assert sent_priority(p, {**bearer(LOW_KEY), "X-Skulk-Priority": "high"}) == "low"  # clamped, not refused
    assert sent_priority(p, bearer(HIGH_KEY)) == "high"
    assert sent_priority(p, {**bearer(HIGH_KEY), "X-Skulk-Priority": "low"}) == "low"  # lowering is allowed
    assert sent_priority(p, {**bearer(PLAIN_KEY), "X-Skulk-Priority": "high"}) == "normal"
    assert sent_priority(p, {**bearer(ADMIN), "X-Skulk-Priority": "high"}) == "high"


@pytest.mark.parametrize("path,body,shape", [
    ("/v1/chat/completions", CHAT, "openai"),
    ("/v1/messages", {**CHAT, "max_tokens": 4}, "anthropic"),
    ("/ollama/api/chat", {**CHAT, "stream": False}, "ollama"),
])
def test_a_bad_header_is_400_in_the_shape_of_the_api(path, body, shape):
    p = port(False)
    resp = TestClient(create_app(p), raise_server_exceptions=False, backend="trio").post(
        path, json=body, headers={"X-Skulk-Priority": "urgent"})
    assert resp.status_code == 400
    err = resp.json()
    if shape == "openai":
        assert err["error"]["param"] == "X-Skulk-Priority" and err["error"]["code"] == "invalid_priority"
    elif shape == "anthropic":
        assert err["type"] == "error" and err["error"]["type"] == "invalid_request_error"
    else:
        assert "X-Skulk-Priority" in err["error"]
    assert not p.sent_of(cmd.GenerateText)


def test_effective_priority_rules():
    user, admin = Principal("u", "u", "user"), Principal("a", "a", "admin")
    low, none = ProjectPolicy(name="p", priority="low"), ProjectPolicy(name="q")
    assert effective_priority(None, None, None) == "normal"
    assert effective_priority("high", user, none) == "normal"
    assert effective_priority("low", user, none) == "low"
    assert effective_priority("normal", user, low) == "low"
    assert effective_priority(None, admin, low) == "low" and effective_priority("high", admin, low) == "high"


def test_projects_accept_a_priority_and_the_master_copies_the_commands_onto_the_task():
    assert ProjectPolicy(name="p", priority="high").public()["priority"] == "high"
    assert CreateProjectParams(name="p", priority="low").priority == "low"  # POST /v1/projects' body
    with pytest.raises(ValueError):
        ProjectPolicy(name="p", priority="urgent")
    p = ScriptedPort()
    params = TextGenerationTaskParams(model=M, input=[ChatMessage(role="user", content="x")])
    (created,) = decide_generate_text(p.state, cmd.GenerateText(task_params=params, priority="high"), task_id="t1")
    assert created.task.priority == "high"
