"""Serving under pressure, in process (issue 15): the gateway switch, probes, admission answers
(429/503 in every API's shape, before any stream starts), request deadlines and placement that
waits while the cluster converges. The port admits through the real master command table."""

import json

import pytest
from starlette.testclient import TestClient

from skulk.api import routes_instances
from skulk.api.app import create_app
from skulk.config.model import ApiSettings, InferenceSettings, Settings
from skulk.models import DEFAULT_MODEL_ID as M
from skulk.testing.fake_port import FAKE_NODE_ID as NODE
from skulk.testing.fake_port import FakePort, with_ready_runners
from skulk.types import commands as cmd
from skulk.types.chunks import TokenChunk, Usage
from skulk.types.ids import SessionId
from skulk.types.runners import RunnerLoading, RunnerReady
from skulk.types.state import State
from skulk.types.tasks import TaskStatus, TextGeneration
from skulk.types.topology import TopologySnapshot
from tests.factories import ring_instance
from tests.master.test_placement_builders import GIB, memory

USER = [{"role": "user", "content": "hi"}]
CHAT = {"model": M, "messages": USER}
MESSAGES = {"model": M, "max_tokens": 8, "messages": USER}
OLLAMA = {"model": M, "messages": USER, "stream": False}


def hello(_):
    return [TokenChunk(text="Hello"), TokenChunk(text="", finish_reason="stop",
                                                 usage=Usage(prompt_tokens=3, completion_tokens=1))]


def silent(_):
    return []  # the engine never answers: only a deadline ends the request


class Port(FakePort):
    def __init__(self, answer=hello, *, ready: bool = True, api: dict | None = None, pending: int | None = None,
                 master_limit: int = 16):
        super().__init__(is_master=True, script={cmd.GenerateText: answer})
        self.pending_limit = master_limit
        self.settings = Settings(api=ApiSettings(**(api or {})),
                                 inference=InferenceSettings(max_pending_per_instance=pending))
        inst = ring_instance("i0", [NODE], self.catalog.require(M))
        runners = {} if ready else {"i0-r0": RunnerLoading()}
        self.state = with_ready_runners(State(instances={"i0": inst}, runners=runners))

    def open_tasks(self, n: int) -> None:
        tasks = {f"busy{i}": TextGeneration(task_id=f"busy{i}", instance_id="i0", command_id=f"c{i}", model=M,
                                            task_status=TaskStatus.Running) for i in range(n)}
        self.state = self.state.model_copy(update={"tasks": {**self.state.tasks, **tasks}})


def client(port: FakePort) -> TestClient:
    return TestClient(create_app(port), raise_server_exceptions=False, backend="trio")


def test_gateway_off_answers_503_on_every_inference_route_in_its_shape_and_admin_routes_work():
    port = Port(api={"gateway_enabled": False})
    c = client(port)
    openai = c.post("/v1/chat/completions", json=CHAT)
    assert openai.status_code == 503 and openai.json()["error"]["code"] == "gateway_disabled"
    assert "gateway disabled" in openai.json()["error"]["message"] and openai.headers["Retry-After"]
    anthropic = c.post("/v1/messages", json=MESSAGES)
    assert anthropic.status_code == 503 and anthropic.json()["type"] == "error"
    assert "gateway disabled" in anthropic.json()["error"]["message"]
    for path in ("/ollama/api/chat", "/ollama/api/generate", "/ollama/api/embed", "/v1/embeddings",
                 "/v1/responses", "/ollama/api/api/chat"):
        r = c.post(path, json={"model": M})
        assert r.status_code == 503 and "gateway disabled" in json.dumps(r.json()), path
    assert not port.sent  # nothing reached the master
    assert c.get("/state").status_code == 200 and c.get("/health").status_code == 200
    assert c.get("/ollama/api/tags").status_code == 200
    port.settings = Settings(api=ApiSettings(gateway_enabled=True))  # live: the next request sees it
    assert c.post("/v1/chat/completions", json=CHAT).json()["choices"][0]["message"]["content"] == "Hello"


def test_a_full_instance_gets_429_with_retry_after_at_once_in_every_shape_streams_included():
    port = Port(pending=2)
    port.open_tasks(2)
    c = client(port)
    for stream in (False, True):
        r = c.post("/v1/chat/completions", json={**CHAT, "stream": stream})
        assert r.status_code == 429 and r.headers["Retry-After"] == "1", r.text
        assert r.json()["error"]["message"].startswith("pending limit")
    anthropic = c.post("/v1/messages", json=MESSAGES)
    assert anthropic.status_code == 429 and anthropic.json()["error"]["type"] == "rate_limit_error"
    ollama = c.post("/ollama/api/chat", json=OLLAMA)
    assert ollama.status_code == 429 and "pending limit" in ollama.json()["error"] and ollama.headers["Retry-After"]
    assert not port.sent_of(cmd.GenerateText)  # refused on this node, without a master round trip


def test_the_masters_refusal_is_a_429_before_a_stream_starts_and_leaves_no_task():
    port = Port(pending=8, master_limit=1)  # this node sees room; the master knows better
    port.open_tasks(1)
    r = client(port).post("/v1/chat/completions", json={**CHAT, "stream": True})
    assert r.status_code == 429 and r.headers["Retry-After"] and "pending limit" in r.json()["error"]["message"]
    [sent] = port.sent_of(cmd.GenerateText)
    assert sent.command_id in port.state.rejections
    assert set(port.state.tasks) == {"busy0"}


def test_a_request_waits_for_the_instance_to_become_ready_then_is_served():
    class Warming(Port):
        polls = 0

        @property
        def state(self):
            self.polls += 1
            if self.polls == 5:  # a few polls into the wait the runner reports ready
                self._s = self._s.model_copy(update={"runners": {"i0-r0": RunnerReady()}})
            return self._s

        @state.setter
        def state(self, value):
            self._s = value

    port = Warming(ready=False, api={"queue_timeout_seconds": 20})
    r = client(port).post("/v1/chat/completions", json=CHAT)
    assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"] == "Hello"


def test_no_ready_instance_within_the_queue_timeout_is_503_with_retry_after():
    port = Port(ready=False, api={"queue_timeout_seconds": 0.3})
    c = client(port)
    r = c.post("/v1/chat/completions", json=CHAT)
    assert r.status_code == 503 and r.headers["Retry-After"] and "queue_timeout_seconds" in r.json()["error"]["message"]
    assert c.post("/v1/messages", json=MESSAGES).json()["error"]["type"] == "overloaded_error"
    assert not port.sent_of(cmd.GenerateText)


def test_a_non_streamed_request_past_its_deadline_gets_504_and_its_task_is_cancelled():
    port = Port(silent, api={"request_timeout_seconds": 0.5})
    r = client(port).post("/v1/chat/completions", json=CHAT)
    assert r.status_code == 504 and r.json()["error"]["code"] == "request_timeout"
    [sent] = port.sent_of(cmd.GenerateText)
    assert [c.cancelled_command_id for c in port.sent_of(cmd.CancelCommand)] == [sent.command_id]
    assert port.state.tasks == {} and not port.sent_of(cmd.FinishCommand)


def test_a_silent_stream_ends_with_a_retryable_error_event():
    port = Port(silent, api={"stall_timeout_seconds": 0.5})
    r = client(port).post("/v1/chat/completions", json={**CHAT, "stream": True})
    assert r.status_code == 200
    errors = [json.loads(line[6:]) for line in r.text.splitlines() if line.startswith("data: {")]
    assert errors and errors[-1]["error"]["code"] == "stream_stalled" and errors[-1]["error"]["retryable"]
    assert port.sent_of(cmd.CancelCommand) and port.state.tasks == {}


class Probed(Port):
    def __init__(self, *, master: bool, master_age: float | None = None, **kw):
        super().__init__(**kw)
        self.is_master, self._age = master, master_age
        self.session = SessionId(master_node_id="12D3KooWmaster", election_clock=1)

    def live_telemetry(self):
        return {}, ({} if self._age is None else {"12D3KooWmaster": self._age})


def test_ready_needs_a_session_and_a_reachable_master():
    assert client(Port()).get("/ready").json()["status"] == "starting"
    assert client(Probed(master=True)).get("/ready").status_code == 200
    assert client(Probed(master=False, master_age=0.5)).get("/ready").status_code == 200
    for age in (None, 30.0):
        r = client(Probed(master=False, master_age=age)).get("/ready")
        assert r.status_code == 503 and r.json()["status"] == "unreachable" and "12D3KooWmaster" in r.json()["reason"]


def test_ready_for_a_model_follows_its_instances():
    assert client(Probed(master=True)).get("/ready", params={"model": M}).json() == {"status": "ok", "model": M}
    loading = client(Probed(master=True, ready=False)).get("/ready", params={"model": M})
    assert loading.status_code == 503 and "is ready yet" in loading.json()["reason"]
    absent = client(Probed(master=True)).get("/ready", params={"model": "org/none"})
    assert absent.status_code == 503 and "no instance of org/none is placed" in absent.json()["reason"]


SEEN = "2026-01-01T00:00:00Z"


class Joining(FakePort):
    """Nodes `heard` (seen by the master) and a topology of `before`, which becomes `after` on the
    `joins_at`-th read of the state (never when None)."""

    def __init__(self, heard: list[str], before: list[str], after: list[str] | None = None, joins_at: int = 4):
        super().__init__(is_master=True)
        self.after, self.joins_at, self.reads = after, joins_at, 0
        self._s = State(last_seen={n: SEEN for n in heard}, topology=TopologySnapshot(nodes=before))

    @property
    def state(self):
        self.reads += 1
        if self.after is not None and self.reads == self.joins_at:
            self._s = self._s.model_copy(update={"topology": TopologySnapshot(nodes=self.after)})
        return self._s

    @state.setter
    def state(self, value):
        self._s = value

    def node_memory(self):
        return {"a": memory(64 * GIB)}


def test_placement_while_the_topology_catches_up_waits_then_503_never_400(monkeypatch):
    monkeypatch.setattr(routes_instances, "INFO_PENDING_WAIT_S", 1.0)
    body = {"model_id": M, "min_nodes": 2}
    r = client(Joining(heard=["a", "b"], before=["a"])).post("/place_instance", json=body)
    assert r.status_code == 503 and r.headers["Retry-After"] and "converging" in r.json()["error"]["message"]
    alone = client(Joining(heard=["a"], before=["a"])).post("/place_instance", json=body)
    assert alone.status_code == 400  # really one node: impossible, said at once


def test_placement_goes_through_once_the_node_it_needs_is_in_the_topology():
    port = Joining(heard=["a"], before=[], after=["a"])
    r = client(port).post("/place_instance", json={"model_id": M})
    assert r.status_code == 200, r.text
    assert port.reads >= port.joins_at and port.sent  # it waited for the join, then asked the master


@pytest.mark.parametrize("path", ["/health", "/ready"])
def test_probes_need_no_key(path):
    from skulk.api.access_policy import required_level
    assert required_level("GET", path) == "public"


def test_a_request_on_its_way_counts_once_even_after_its_task_reached_the_state():
    from skulk.api import quota

    port = Port(pending=2)
    port.open_tasks(1)  # c0: already in the state, and still "outstanding" on this node
    with quota.outstanding(port, M, "c0"):
        quota.precheck(port, M)  # 1 open of 2: room (counted twice it would be full)
        with quota.outstanding(port, M, "on-its-way"):
            with pytest.raises(quota.RateLimited):
                quota.precheck(port, M)
    quota.precheck(port, M)


class MasterLost(Port):
    """The master dies with the command: no task ever appears, and a new session starts."""

    async def send_command(self, command) -> None:
        self.sent.append(command)
        if isinstance(command, cmd.GenerateText):
            self.session = SessionId(master_node_id="other", election_clock=7)


def test_a_master_change_while_waiting_for_admission_is_a_fast_retryable_503():
    import time

    port = MasterLost()
    port.session = SessionId(master_node_id=NODE, election_clock=1)
    started = time.monotonic()
    r = client(port).post("/v1/chat/completions", json=CHAT)
    assert r.status_code == 503 and r.json()["error"]["code"] == "session_changed", r.text
    assert r.headers["Retry-After"] == "1"
    assert time.monotonic() - started < 5  # not the 15 s admission deadline
