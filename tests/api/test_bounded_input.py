"""Bounded and hostile HTTP input, in process: 413 before a big body is buffered, 400 naming the
field for requests over a limit, /events paged and streamed, and no body at all gets a 5xx."""

import json
from types import SimpleNamespace

import pytest
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from skulk.api.app import create_app
from skulk.api.body_limit import BodyLimitMiddleware
from skulk.api.limits import MAX_MESSAGES, MAX_OUTPUT_TOKENS, MAX_STOP_STRINGS, MAX_TOOLS
from skulk.config.model import ApiSettings
from skulk.faults import FAULTS
from skulk.models import DEFAULT_MODEL_ID as M
from skulk.types.events import IndexedEvent, TestEvent
from tests.api_compat.fake_port import ScriptedPort

USER = [{"role": "user", "content": "hi"}]
ENVELOPE_KEYS = {"message", "type", "param", "code"}


class LimitedPort(ScriptedPort):
    """A scripted port whose node settings carry an `api` section, as the real facade's do."""

    def __init__(self, api: ApiSettings | None = None):
        super().__init__()
        self.settings = SimpleNamespace(api=api or ApiSettings())


def client(api: ApiSettings | None = None, port=None) -> TestClient:
    return TestClient(create_app(port or LimitedPort(api)), raise_server_exceptions=False, backend="trio")


def chat(**extra) -> dict:
    return {"model": M, "messages": USER, **extra}


def assert_envelope(resp, status: int, param: str | None = None) -> dict:
    assert resp.status_code == status, resp.text[:300]
    err = resp.json()["error"]
    assert set(err) == ENVELOPE_KEYS
    if param is not None:
        assert err["param"] == param, err
    return err


def chunks(n: int, size: int = 64 * 1024):
    for _ in range(n):
        yield b"x" * size


# ----- api.max_body_bytes -----

def test_declared_length_over_the_limit_is_413_from_settings():
    c = client(ApiSettings(max_body_bytes=4096))
    before = FAULTS.snapshot().get("api.body_too_large", 0)
    err = assert_envelope(c.post("/v1/chat/completions", content=b"{" + b" " * 5000 + b"}"), 413)
    assert "4096" in err["message"] and err["code"] == "request_too_large"
    assert FAULTS.snapshot()["api.body_too_large"] == before + 1
    ok = c.post("/v1/chat/completions", json=chat())  # a small body still serves
    assert ok.status_code == 200 and ok.json()["choices"][0]["message"]["content"] == "Hello!"


@pytest.mark.parametrize("path,shape", [("/v1/chat/completions", "openai"), ("/v1/messages", "anthropic"),
                                        ("/ollama/api/chat", "ollama"), ("/place_instance", "openai")])
@pytest.mark.parametrize("declared", [False, True], ids=["chunked", "content-length"])
def test_body_over_the_limit_is_413_in_each_apis_shape(path, shape, declared):
    c = client()
    resp = c.post(path, content=b"x" * (8 * 1024 * 1024 + 1)) if declared else \
        c.post(path, content=chunks(200))  # 12.5 MiB, no Content-Length
    assert resp.status_code == 413
    body = resp.json()
    if shape == "openai":
        assert set(body["error"]) == ENVELOPE_KEYS
    elif shape == "anthropic":
        assert body["type"] == "error" and body["error"]["type"] == "request_too_large"
    else:
        assert "api.max_body_bytes" in body["error"]


def test_middleware_never_reads_past_the_limit():
    """Driven as bare ASGI: the app asks for chunks until the limit is passed, then no more."""
    pulled, sent = [], []

    async def receive():
        pulled.append(1)
        return {"type": "http.request", "body": b"x" * 100, "more_body": True}

    async def send(message):
        sent.append(message)

    async def app(scope, receive, send):
        from starlette.requests import Request
        from skulk.api.errors import skulk_error
        try:
            await Request(scope, receive).body()
        except Exception as exc:  # noqa: BLE001 - the 413 the routes' handlers would answer
            await (await skulk_error(None, exc))(scope, receive, send)

    mw = BodyLimitMiddleware(app, limit=lambda: 1000)
    trio.run(mw, {"type": "http", "path": "/x", "headers": []}, receive, send)
    assert len(pulled) == 11 and sent[0]["status"] == 413  # 1100 bytes: the first chunk past 1000


def test_bad_content_length_is_400_without_reaching_the_app():
    sent, reached = [], []

    async def app(scope, receive, send):
        reached.append(scope)

    async def send(message):
        sent.append(message)

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    mw = BodyLimitMiddleware(app, limit=lambda: 1000)
    for value, status in ((b"12abc", 400), (b"1001", 413), (b"9" * 30, 400)):
        sent.clear()
        trio.run(mw, {"type": "http", "path": "/x", "headers": [(b"content-length", value)]}, receive, send)
        assert sent[0]["status"] == status and not reached
        assert json.loads(sent[1]["body"])["error"]["code"] in (status, "request_too_large")


# ----- request limits: 400 naming the field -----

@pytest.mark.parametrize("body,param", [
    (chat(messages=USER * (MAX_MESSAGES + 1)), "messages"),
    (chat(messages=[{"role": "user", "content": "x" * 1001}]), "messages"),
    (chat(stop=["s"] * (MAX_STOP_STRINGS + 1)), "stop"),
    (chat(stop=["ok", "x" * 1001]), "stop[1]"),
    (chat(tools=[{"type": "function", "function": {"name": f"f{i}"}} for i in range(MAX_TOOLS + 1)]), "tools"),
    (chat(max_tokens=MAX_OUTPUT_TOKENS + 1), "max_tokens"),
    (chat(max_completion_tokens=10**12), "max_completion_tokens"),
    (chat(seed=2**64), "seed"),
    (chat(tools=[{"type": "function", "function": {"name": "f", "parameters": {"maximum": 2**70}}}]), "tools"),
])
def test_chat_limits_are_400_with_the_field(body, param):
    c = client(ApiSettings(max_prompt_chars=1000))
    assert_envelope(c.post("/v1/chat/completions", json=body), 400, param)


def test_the_other_apis_name_their_own_fields():
    c = client(ApiSettings(max_prompt_chars=1000))
    big = "x" * 1001
    resp = c.post("/v1/messages", json={"model": M, "max_tokens": 5, "messages": USER,
                                        "stop_sequences": ["s"] * (MAX_STOP_STRINGS + 1)})
    assert resp.status_code == 400 and resp.json()["error"]["type"] == "invalid_request_error"
    resp = c.post("/v1/messages", json={"model": M, "max_tokens": MAX_OUTPUT_TOKENS + 1, "messages": USER})
    assert resp.status_code == 400 and "max_tokens" in resp.json()["error"]["message"]
    assert_envelope(c.post("/v1/responses", json={"model": M, "input": big}), 400, "input")
    assert_envelope(c.post("/v1/responses", json={"model": M, "input": "hi", "max_output_tokens": 10**9}),
                    400, "max_output_tokens")
    resp = c.post("/ollama/api/generate", json={"model": M, "prompt": big, "stream": False})
    assert resp.status_code == 400 and "max_prompt_chars" in resp.json()["error"]
    resp = c.post("/ollama/api/chat", json={"model": M, "messages": USER, "options": {"num_predict": 10**9}})
    assert resp.status_code == 400 and "options.num_predict" in resp.json()["error"]


def test_a_request_at_the_limit_is_served():
    c = client(ApiSettings(max_prompt_chars=1000))
    resp = c.post("/v1/chat/completions", json=chat(messages=[{"role": "user", "content": "x" * 984}],
                                                    max_tokens=MAX_OUTPUT_TOKENS, stop=["s"] * MAX_STOP_STRINGS))
    assert resp.status_code == 200, resp.text


def test_prompt_limit_is_capped_below_the_runner_frame():
    from skulk.engine.framing import MAX_FRAME
    cap = ApiSettings.model_fields["max_prompt_chars"].metadata
    most = next(m.le for m in cap if hasattr(m, "le"))
    assert most * 4 + 4 * 1024 * 1024 < MAX_FRAME  # 4 UTF-8 bytes a character, plus framing and fields
    with pytest.raises(ValueError):
        ApiSettings(max_prompt_chars=most + 1)


# ----- hostile bodies -----

@pytest.mark.parametrize("content,headers", [
    (b"{not json", {}),
    (b"model=x&messages=y", {"Content-Type": "application/x-www-form-urlencoded"}),
    (b"[" * 50_000 + b"]" * 50_000, {}),
    (b'{"model": "m", "messages": [], "max_tokens": 1' + b"0" * 5000 + b"}", {}),
    (b'{"model": "m", "messages": [{"role": "user", "content": "hi"}], "temperature": NaN}', {}),
    (b"\xff\xfe\x00garbage", {"Content-Type": "application/json"}),
    (b"", {}),
    (b"[]", {}),
])
@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/responses", "/place_instance", "/config"])
def test_hostile_bodies_get_4xx_with_the_envelope(path, content, headers):
    c = client()
    resp = c.post(path, content=content, headers=headers) if path != "/config" else \
        c.put(path, content=content, headers=headers)
    assert 400 <= resp.status_code < 500, (resp.status_code, resp.text[:200])
    assert set(resp.json()["error"]) == ENVELOPE_KEYS


@pytest.mark.parametrize("path", ["/ollama/api/chat", "/ollama/api/generate", "/ollama/api/show", "/v1/messages"])
def test_hostile_bodies_get_4xx_on_the_other_apis(path):
    c = client()
    for content in (b"{not json", b"[" * 50_000, b'{"model": "m", "prompt": "x", "options": {"num_predict": Infinity,'
                    b' "temperature": NaN}, "messages": [{"role": "user", "content": "x"}]}'):
        resp = c.post(path, content=content)
        assert 400 <= resp.status_code < 500, (path, content[:40], resp.status_code, resp.text[:200])
        assert "error" in resp.json()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=20)
# Bodies shaped enough like requests to get past the first checks, with hostile values anywhere.
request_like = st.fixed_dictionaries({"model": st.sampled_from([M, "", "x/y"]) | json_values}, optional={
    "messages": st.lists(st.fixed_dictionaries({"role": st.sampled_from(["user", "tool", "x"]) | json_values,
                                                "content": json_values}), max_size=3) | json_values,
    "max_tokens": json_values | st.integers(), "stop": json_values, "tools": json_values, "stream": json_values,
    "input": json_values, "prompt": json_values, "options": json_values, "seed": st.integers()})

INFERENCE_PATHS = ["/v1/chat/completions", "/v1/responses", "/v1/messages", "/ollama/api/chat",
                   "/ollama/api/generate", "/bench/chat/completions"]


@settings(max_examples=60, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(path=st.sampled_from(INFERENCE_PATHS), body=request_like | json_values)
def test_random_json_bodies_never_get_a_server_error(path, body):
    c = client(ApiSettings(max_prompt_chars=500))
    resp = c.post(path, content=json.dumps(body).encode())
    assert resp.status_code < 500, (path, body, resp.status_code, resp.text[:300])
    if resp.status_code >= 400:
        err = resp.json()
        if path.startswith("/ollama"):
            assert isinstance(err["error"], str)
        elif path == "/v1/messages":
            assert err["type"] == "error" and set(err["error"]) == {"type", "message"}
        else:
            assert set(err["error"]) == ENVELOPE_KEYS


# ----- /events paged and streamed, /state off the loop -----

def events_port(n: int) -> LimitedPort:
    port = LimitedPort()
    port.history = [IndexedEvent(idx=i, event=TestEvent(note=f"n{i}")) for i in range(n)]
    return port


def notes(resp) -> list[str]:
    return [e["TestEvent"]["note"] for e in resp.json()]


def test_events_stream_the_whole_log_by_default():
    resp = client(port=events_port(600)).get("/events")
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("application/json")
    assert notes(resp) == [f"n{i}" for i in range(600)] and "x-skulk-next-since" not in resp.headers
    assert client(port=events_port(0)).get("/events").json() == []


def test_events_page_with_since_and_limit():
    c = client(port=events_port(10))
    first = c.get("/events?limit=4")
    assert notes(first) == ["n0", "n1", "n2", "n3"] and first.headers["x-skulk-next-since"] == "4"
    rest = c.get(f"/events?since={first.headers['x-skulk-next-since']}&limit=100")
    assert notes(rest) == [f"n{i}" for i in range(4, 10)] and "x-skulk-next-since" not in rest.headers
    for bad in ("limit=0", "limit=-1", "since=x", "limit=1000001"):
        assert_envelope(c.get(f"/events?{bad}"), 400)


def test_state_keeps_its_shape():
    from skulk.api.routes_cluster import state_document
    port = LimitedPort()
    doc = client(port=port).get("/state").json()
    assert doc == json.loads(json.dumps(state_document(port)))
    assert {"instances", "nodeHealth", "nodeIdentities", "sessionId", "masterNodeId"} <= set(doc)


def test_the_worst_request_the_api_accepts_still_fits_a_runner_frame():
    """At the highest allowed api.max_prompt_chars, every character 4 UTF-8 bytes, every count at its
    bound: check_limits lets it through and the supervisor's frame encoder takes it."""
    from skulk.api.limits import MAX_STOP_CHARS, check_limits
    from skulk.runner.frames import encode_frame
    from skulk.types.tasks import ChatMessage, TextGenerationTaskParams
    limits = ApiSettings(max_prompt_chars=8_000_000)
    wide = "\U0001d11e"  # 4 bytes in UTF-8
    stop = [wide * MAX_STOP_CHARS] * MAX_STOP_STRINGS
    tools = [{"type": "function", "function": {"name": f"f{i}", "description": wide * 1000}} for i in range(MAX_TOOLS)]
    used = sum(len(s) for s in stop) + sum(len(json.dumps(t, ensure_ascii=False)) for t in tools)
    per = (limits.max_prompt_chars - used) // MAX_MESSAGES
    params = TextGenerationTaskParams(model=M, input=[ChatMessage(role="user", content=wide * per)] * MAX_MESSAGES,
                                      stop=stop, tools=tools, max_output_tokens=MAX_OUTPUT_TOKENS, seed=2**63 - 1)
    check_limits(params, limits)
    frame = encode_frame({"op": "generate", "id": "t", "params": params.model_dump(mode="json"), "trace": False})
    assert len(frame) > 30 * 1024 * 1024  # really near the worst case
