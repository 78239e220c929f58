"""Projects, limits, usage and audit through the real app in-process: a fake port whose commands are
decided by the master's real deciders and folded into its state, so routes see what a node would."""

import itertools
from datetime import datetime, timezone

from starlette.testclient import TestClient

from skulk.api.app import create_app
from skulk.master.dispatch import DecideContext, decide
from skulk.state.apply import apply_event
from skulk.testing.fake_port import FakePort, with_ready_runners
from skulk.types import commands as cmd
from skulk.types.access import ApiKeyRecord, hash_key, new_key
from skulk.types.chunks import TokenChunk, Usage
from tests.factories import ring_instance

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
MODEL = "org/tiny"


def answer(c):
    yield TokenChunk(text="Paris", finish_reason="stop", usage=Usage(prompt_tokens=7, completion_tokens=3))


class MasterPort(FakePort):
    """Sends every command through the master's command table, like a one-node cluster."""

    def __init__(self, **kw):
        super().__init__(script={cmd.GenerateText: answer}, **kw)
        self._ids = (f"id{i}" for i in itertools.count())

    async def send_command(self, command) -> None:
        self.sent.append(command)
        ctx = DecideContext(now=datetime.now(timezone.utc), sender=self.node_id, new_id=lambda: next(self._ids))
        try:
            events = decide(self.state, command, ctx)
        except Exception:  # noqa: BLE001 - the master refuses silently; the route's wait notices
            return
        for e in events:
            self.state = apply_event(self.state, e)
        if any(type(e).__name__ == "TaskCreated" for e in events):
            answer_of = self.script.get(type(command))
            for chunk in answer_of(command) if answer_of else ():
                self._streams[command.command_id].send_nowait(chunk)


def add_key(port: MasterPort, key_id: str, role: str, project: str | None = None) -> str:
    key, salt = new_key(key_id), "ab" * 16
    record = ApiKeyRecord(id=key_id, name=key_id, role=role, project=project, created_at=T0, salt=salt,
                          key_hash=hash_key(key, salt))
    port.state = port.state.model_copy(update={"api_keys": {**port.state.api_keys, key_id: record}})
    return key


def setup():
    port = MasterPort()
    port.state = with_ready_runners(port.state.model_copy(update={"instances": {"i1": ring_instance("i1", ["a"])}}))
    admin = add_key(port, "adm", "admin")
    user = add_key(port, "u1", "user", project="team")
    client = TestClient(create_app(port), raise_server_exceptions=False, backend="trio")
    return port, client, {"Authorization": f"Bearer {admin}"}, {"Authorization": f"Bearer {user}"}


def chat(client, headers, model=MODEL):
    return client.post("/v1/chat/completions", headers=headers,
                       json={"model": model, "messages": [{"role": "user", "content": "capital of France?"}]})


def test_project_crud_validates_and_is_admin_only():
    port, client, admin, user = setup()
    r = client.post("/v1/projects", headers=admin, json={"name": "team", "requests_per_minute": 3,
                                                         "allowed_models": [MODEL]})
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["name"] == "team" and body["requests_per_minute"] == 3 and body["keys"] == ["u1"]
    assert set(body["usage"]) == {"1m", "1h", "24h"} and body["open_requests"] == 0
    assert client.post("/v1/projects", headers=admin, json={"name": "team"}).status_code == 409
    for bad in ({"name": "../x"}, {"name": "ok", "tokens_per_minute": 0}, {"name": "ok", "bogus": 1}):
        assert client.post("/v1/projects", headers=admin, json=bad).status_code in (400, 422), bad
    assert client.post("/v1/projects", headers=user, json={"name": "mine"}).status_code == 403
    assert client.get("/v1/projects", headers=user).status_code == 403
    assert [p["name"] for p in client.get("/v1/projects", headers=admin).json()["data"]] == ["team"]
    assert client.get("/v1/projects/nope", headers=admin).status_code == 404
    assert client.delete("/v1/projects/team", headers=admin).json() == {"name": "team", "deleted": True}
    assert "team" not in port.state.projects


def test_rate_limit_answers_429_with_the_four_headers_and_counts_usage():
    port, client, admin, user = setup()
    client.post("/v1/projects", headers=admin, json={"name": "team", "requests_per_minute": 3})
    ok = [chat(client, user) for _ in range(3)]
    assert [r.status_code for r in ok] == [200, 200, 200]
    assert ok[0].headers["X-RateLimit-Limit"] == "3"
    assert [r.headers["X-RateLimit-Remaining"] for r in ok] == ["2", "1", "0"]
    refused = chat(client, user)
    assert refused.status_code == 429, refused.text
    for h in ("Retry-After", "X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"):
        assert h in refused.headers, h
    assert refused.headers["X-RateLimit-Remaining"] == "0" and 1 <= int(refused.headers["Retry-After"]) <= 61
    assert refused.json()["error"]["code"] == "rate_limit_exceeded"
    usage = client.get("/v1/usage", headers=admin, params={"project": "team"}).json()
    assert usage["keys"] == {}
    minute = usage["projects"]["team"]["1m"]
    assert minute == {"requests": 3, "prompt_tokens": 21, "completion_tokens": 9, "rejections": 1}
    assert client.get("/v1/usage", headers=admin, params={"key_id": "u1"}).json()["keys"]["u1"]["1h"]["requests"] == 3
    metrics = client.get("/metrics", headers=admin).text
    assert 'skulk_project_requests_total{project="team"} 3.0' in metrics
    assert 'skulk_key_rejections_total{key_id="u1"} 1.0' in metrics


def test_a_model_outside_the_project_gets_403_and_admin_keys_are_unlimited():
    port, client, admin, user = setup()
    client.post("/v1/projects", headers=admin, json={"name": "team", "allowed_models": ["org/other"]})
    r = chat(client, user)
    assert r.status_code == 403 and "not allowed" in r.json()["error"]["message"]
    assert not port.sent_of(cmd.GenerateText)  # refused before the master was asked
    assert chat(client, admin).status_code == 200


def test_audit_lists_admin_actions_newest_first_without_secrets():
    port, client, admin, user = setup()
    client.post("/v1/projects", headers=admin, json={"name": "team"})
    client.delete("/v1/projects/team", headers=admin)
    client.post("/v1/projects", headers=user, json={"name": "sneaky"})  # refused: never reaches the trail
    chat(client, admin)  # inference is not an admin action
    entries = client.get("/v1/audit", headers=admin, params={"scope": "node"}).json()["data"]
    assert [(e["method"], e["route"], e["status"]) for e in entries] == [
        ("DELETE", "/v1/projects/{name}", 200), ("POST", "/v1/projects", 201)]
    assert entries[0]["key_id"] == "adm" and entries[0]["params"] == {"name": "team"}
    assert entries[0]["node_id"] == port.node_id and entries[0]["at"] > entries[1]["at"]
    assert "sk-skulk" not in client.get("/v1/audit", headers=admin).text
    assert client.get("/v1/audit", headers=admin, params={"limit": "0"}).status_code == 400
    assert client.get("/v1/audit", headers=user).status_code == 403
