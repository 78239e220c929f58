"""API keys in process: 401/403 in each API's envelope, the real openai and anthropic clients (ollama's: tests/access),
the route table's defaults, Host and Content-Type refusals, CORS, and key records kept out of
/state and /events."""

from datetime import datetime, timedelta, timezone

import anthropic
import openai
import pytest
from starlette.testclient import TestClient

from skulk.api.access_policy import required_level
from skulk.api.app import all_routes, create_app
from skulk.api.auth import is_loopback_bind, is_loopback_name
from skulk.models import DEFAULT_MODEL_ID as M
from skulk.types.access import ApiKeyRecord, hash_key, new_key, new_salt
from skulk.types.events import ApiKeyCreated, IndexedEvent
from tests.api_compat.fake_port import ScriptedPort

NOW = datetime.now(timezone.utc)
USER_MSG = [{"role": "user", "content": "hi"}]


def record(key_id: str, role: str, models=None, expires_at=None) -> tuple[str, ApiKeyRecord]:
    key, salt = new_key(key_id), new_salt()
    return key, ApiKeyRecord(id=key_id, name=key_id, role=role, models=models, created_at=NOW,
                             expires_at=expires_at, salt=salt, key_hash=hash_key(key, salt))


ADMIN, ADMIN_REC = record("adm", "admin")
USER, USER_REC = record("usr", "user")
NARROW, NARROW_REC = record("nar", "user", models=["other/model"])
OLD, OLD_REC = record("old", "user", expires_at=NOW - timedelta(seconds=1))


class KeyedPort(ScriptedPort):
    def __init__(self, records=(ADMIN_REC, USER_REC, NARROW_REC, OLD_REC)):
        super().__init__()
        self.state = self.state.model_copy(update={"api_keys": {r.id: r for r in records}})
        self.history = [IndexedEvent(idx=0, event=ApiKeyCreated(record=ADMIN_REC))]


def client(port=None, bind_host=None, **kw) -> TestClient:
    base = "http://127.0.0.1:52415" if bind_host else "http://testserver"
    return TestClient(create_app(port or KeyedPort(), bind_host=bind_host), base_url=base,
                      raise_server_exceptions=False, backend="trio", **kw)


def bearer(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


def chat(model: str = M) -> dict:
    return {"model": model, "messages": USER_MSG}


# ----- enforcement -----

def test_an_open_node_needs_no_key():
    c = client(ScriptedPort())
    assert c.get("/state").status_code == 200
    assert c.post("/v1/chat/completions", json=chat()).status_code == 200


def test_missing_and_wrong_keys_get_401_in_each_apis_shape():
    c = client()
    openai_style = c.post("/v1/chat/completions", json=chat())
    assert openai_style.status_code == 401 and openai_style.json()["error"]["code"] == "invalid_api_key"
    wrong = c.post("/v1/messages", json={"model": M, "max_tokens": 5, "messages": USER_MSG},
                   headers={"x-api-key": "sk-skulk-adm.wrong"})
    assert wrong.status_code == 401
    assert wrong.json()["type"] == "error" and wrong.json()["error"]["type"] == "authentication_error"
    olla = c.post("/ollama/api/chat", json=chat(), headers=bearer("nope"))
    assert olla.status_code == 401 and isinstance(olla.json()["error"], str)
    assert c.get("/state", headers=bearer(OLD)).status_code == 401  # expired


def test_public_routes_need_no_key():
    c = client()
    assert c.get("/health").json() == {"status": "ok"}
    assert c.get("/node_id").status_code == 200
    assert c.get("/ready").status_code == 503  # the fake has no session
    assert c.get("/").status_code == 200 and c.get("/models", headers={"accept": "text/html"}).status_code == 200
    assert c.get("/models").status_code == 401  # the catalog itself is not public


def test_user_keys_get_403_on_admin_routes_and_foreign_models():
    c = client()
    for method, path, body in [("POST", "/admin/restart", None), ("PUT", "/config", {}),
                               ("DELETE", "/instance/i0", None), ("POST", "/v1/keys", {"name": "x"}),
                               ("GET", "/state", None)]:
        resp = c.request(method, path, json=body, headers=bearer(USER))
        assert resp.status_code == 403, (method, path, resp.text)
    assert c.post("/v1/chat/completions", json=chat(), headers=bearer(USER)).status_code == 200
    narrow = c.post("/v1/chat/completions", json=chat(), headers=bearer(NARROW))
    assert narrow.status_code == 403 and "may not use model" in narrow.json()["error"]["message"]
    msg = c.post("/v1/messages", json={"model": M, "max_tokens": 5, "messages": USER_MSG},
                 headers={"x-api-key": NARROW})
    assert msg.status_code == 403 and msg.json()["error"]["type"] == "permission_error"
    assert c.get("/state", headers=bearer(ADMIN)).status_code == 200


def test_unknown_routes_need_admin_and_every_route_has_a_level():
    assert required_level("GET", "/v1/something-new") == "admin"
    assert required_level("PATCH", "/health") == "admin"
    assert required_level("GET", "/v1/audit") == "admin" and required_level("GET", "/v1/usage") == "admin"
    levels = {(s.method, s.path): required_level(s.method, s.path.replace("{", "").replace("}", ""))
              for s in all_routes()}
    assert levels[("POST", "/v1/chat/completions")] == "user"
    assert levels[("PUT", "/config")] == "admin" and levels[("POST", "/place_instance")] == "admin"
    assert levels[("POST", "/store/purge-staging")] == "admin"


# ----- the real SDKs, in process -----

def test_openai_client_passes_its_key_and_parses_401():
    http = client()
    ok = openai.OpenAI(api_key=USER, base_url="http://testserver/v1", http_client=http, max_retries=0)
    assert ok.chat.completions.create(model=M, messages=USER_MSG).choices[0].message.content == "Hello!"
    bad = openai.OpenAI(api_key="sk-skulk-usr.nope", base_url="http://testserver/v1", http_client=http, max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad.chat.completions.create(model=M, messages=USER_MSG)
    narrow = openai.OpenAI(api_key=NARROW, base_url="http://testserver/v1", http_client=http, max_retries=0)
    with pytest.raises(openai.PermissionDeniedError):
        narrow.chat.completions.create(model=M, messages=USER_MSG)


def test_anthropic_client_passes_its_key_and_parses_401():
    http = client()
    ok = anthropic.Anthropic(api_key=USER, base_url="http://testserver", http_client=http, max_retries=0)
    reply = ok.messages.create(model=M, max_tokens=16, messages=USER_MSG)
    assert reply.content[0].text == "Hello!"
    bad = anthropic.Anthropic(api_key="wrong-key", base_url="http://testserver", http_client=http, max_retries=0)
    with pytest.raises(anthropic.AuthenticationError):
        bad.messages.create(model=M, max_tokens=16, messages=USER_MSG)


# ----- browser safety -----

def test_cors_grants_no_foreign_origin():
    c = client(ScriptedPort())
    pre = c.options("/v1/chat/completions", headers={"Origin": "https://evil.example",
                                                     "Access-Control-Request-Method": "POST"})
    assert "access-control-allow-origin" not in pre.headers
    post = c.post("/v1/chat/completions", json=chat(), headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in post.headers


def test_listed_origin_is_granted():
    from types import SimpleNamespace

    from skulk.config.model import ApiSettings
    port = ScriptedPort()
    port.settings = SimpleNamespace(api=ApiSettings(cors_origins=["https://ok.example"]))
    pre = client(port).options("/v1/chat/completions", headers={"Origin": "https://ok.example",
                                                                "Access-Control-Request-Method": "POST"})
    assert pre.headers.get("access-control-allow-origin") == "https://ok.example"
    with pytest.raises(ValueError):
        ApiSettings(cors_origins=["*"])


def test_simple_typed_bodies_get_415_on_state_changing_routes():
    c = client(ScriptedPort())
    for kind in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"):
        resp = c.post("/place_instance", content=b'{"model_id": "x"}', headers={"Content-Type": kind})
        assert resp.status_code == 415, kind
    untyped_page = c.put("/config", content=b"{}", headers={"Origin": "http://127.0.0.1:52415"})
    assert untyped_page.status_code == 415
    assert c.delete("/instance/nope").status_code == 404  # no body: no type needed
    assert c.post("/v1/chat/completions", json=chat()).status_code == 200
    form = {"Content-Type": "application/x-www-form-urlencoded"}  # what `curl -d` sends
    assert c.post("/ollama/api/chat", content=b'{"model": "m"}', headers=form).status_code != 415
    from_page = c.post("/ollama/api/chat", content=b"{}", headers={**form, "Origin": "https://evil.example"})
    assert from_page.status_code == 415 and isinstance(from_page.json()["error"], str)


def test_loopback_node_refuses_foreign_host_names():
    c = client(ScriptedPort(), bind_host="127.0.0.1")
    assert c.get("/health", headers={"Host": "evil.example"}).status_code == 421
    assert c.get("/health", headers={"Host": "evil.example:52415"}).status_code == 421
    for host in ("localhost:52415", "127.0.0.1", "127.0.0.5:80", "[::1]:52415", "LOCALHOST"):
        assert c.get("/health", headers={"Host": host}).status_code == 200, host
    wide = client(ScriptedPort(), bind_host="0.0.0.0")
    assert wide.get("/health", headers={"Host": "node-a.lan:52415"}).status_code == 200


@pytest.mark.parametrize("host,loopback", [("127.0.0.1", True), ("127.0.0.2", True), ("::1", True),
                                           ("[::1]", True), ("localhost", True), ("0.0.0.0", False),
                                           ("192.168.1.5", False), ("::", False), ("node-a.lan", False)])
def test_loopback_bind(host, loopback):
    assert is_loopback_bind(host) is loopback


@pytest.mark.parametrize("header,ok", [("localhost", True), ("localhost:1", True), ("app.localhost", True),
                                       ("127.1.2.3:9", True), ("[::1]", True), ("evil.example", False),
                                       ("127.0.0.1.evil.example", False), ("", False), ("[::1", False),
                                       ("localhost.evil", False)])
def test_loopback_name(header, ok):
    assert is_loopback_name(header) is ok


# ----- secrets stay out of what the API serves -----

def test_state_and_events_hold_no_key_material():
    c = client()
    state = c.get("/state", headers=bearer(ADMIN))
    events = c.get("/events", headers=bearer(ADMIN))
    assert state.status_code == 200 and events.status_code == 200
    assert "apiKeys" not in state.json()
    created = events.json()[0]["ApiKeyCreated"]["record"]
    assert created["id"] == "adm" and "salt" not in created and "keyHash" not in created
    for text in (state.text, events.text):
        assert ADMIN_REC.key_hash not in text and ADMIN_REC.salt not in text and ADMIN not in text


def test_list_keys_shows_no_secrets():
    listed = client().get("/v1/keys", headers=bearer(ADMIN))
    assert listed.status_code == 200
    assert {k["id"] for k in listed.json()["data"]} == {"adm", "usr", "nar", "old"}
    assert all("salt" not in k and "key_hash" not in k for k in listed.json()["data"])
    assert ADMIN_REC.key_hash not in listed.text


def test_authorised_requests_note_their_keys_last_use():
    app = create_app(KeyedPort())
    c = TestClient(app, raise_server_exceptions=False, backend="trio")
    c.get("/v1/models", headers=bearer(USER))
    c.get("/v1/models", headers=bearer("wrong"))
    taken = app.state.key_usage.take()
    assert set(taken) == {"usr"} and app.state.key_usage.take() == {}
