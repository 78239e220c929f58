"""Failover decisions (pure) and the wrapper through the real API routes over a scripted port:
an instance that dies mid-answer is replaced by another ready one, the client sees one answer."""

import json

from starlette.testclient import TestClient

from skulk.api.app import create_app
from skulk.api.failover import MAX_FAILOVERS, plan_failover, unreachable_instances
from skulk.models import DEFAULT_MODEL_ID as M
from skulk.testing.fake_port import FAKE_NODE_ID as NODE
from skulk.testing.fake_port import FakePort
from skulk.types import commands as cmd
from skulk.types.chunks import ErrorChunk, TokenChunk, Usage
from skulk.types.runners import RunnerLoading, RunnerReady
from skulk.types.state import State
from skulk.types.tasks import ChatMessage, TextGeneration, TextGenerationTaskParams
from tests.factories import ring_instance

ANSWER = "one two three four five six"
WORDS = ANSWER.split(" ")
LOST = ErrorChunk(error_type="instance_lost", status_code=500, retryable=True, error_message="node gone")
USER = [{"role": "user", "content": "count"}]


def state(ready: dict[str, bool], nodes: dict[str, str] | None = None) -> State:
    port = FakePort()
    card = port.catalog.require(M)
    instances = {iid: ring_instance(iid, [(nodes or {}).get(iid, NODE)], card) for iid in ready}
    runners = {f"{iid}-r0": RunnerReady() if ok else RunnerLoading() for iid, ok in ready.items()}
    return State(instances=instances, runners=runners)


class DyingPort(FakePort):
    """Every instance 'generates' ANSWER a word per token (token id = word index); instances in
    `dies_after` fail with `error` after that many words. The master's choice honours exclusions."""

    def __init__(self, ready: dict[str, bool], dies_after: dict[str, int], error: ErrorChunk = LOST):
        super().__init__(is_master=True, script={cmd.GenerateText: self._answer})
        self.state, self.dies_after, self.error = state(ready), dies_after, error

    def _answer(self, c: cmd.GenerateText) -> list:
        iid = next(i for i in sorted(self.state.instances) if i not in c.exclude_instances)
        task = TextGeneration(task_id=c.command_id, instance_id=iid, command_id=c.command_id,
                              task_params=c.task_params)
        self.state = self.state.model_copy(update={"tasks": {**self.state.tasks, task.task_id: task}})
        start = len(c.task_params.continue_token_ids or [])
        assert c.task_params.continue_token_ids in (None, list(range(start)))  # exactly what was sent
        out = []
        for i in range(start, len(WORDS)):
            if i == self.dies_after.get(iid):
                return out + [self.error]
            out.append(TokenChunk(text=WORDS[i] + (" " if i < len(WORDS) - 1 else ""), token_ids=[i]))
        return out + [TokenChunk(finish_reason="stop", usage=Usage(prompt_tokens=3, completion_tokens=len(WORDS)))]

    def generate_commands(self) -> list[cmd.GenerateText]:
        return self.sent_of(cmd.GenerateText)


def client(port: FakePort) -> TestClient:
    return TestClient(create_app(port), raise_server_exceptions=False, backend="trio")


def sse_text(resp) -> tuple[str, list[dict]]:
    datas = [json.loads(line[6:]) for line in resp.text.splitlines()
             if line.startswith("data: ") and line != "data: [DONE]"]
    text = "".join(d["choices"][0]["delta"].get("content") or "" for d in datas if d.get("choices"))
    return text, datas


def test_stream_continues_on_the_other_instance_with_the_sent_tokens():
    port = DyingPort({"i0": True, "i1": True}, dies_after={"i0": 2})
    resp = client(port).post("/v1/chat/completions", json={"model": M, "messages": USER, "stream": True,
                                                           "temperature": 0})
    text, datas = sse_text(resp)
    assert text == ANSWER and not any("error" in d for d in datas)
    first, second = port.generate_commands()
    assert second.exclude_instances == ["i0"] and second.task_params.continue_token_ids == [0, 1]
    assert {d["id"] for d in datas} == {first.command_id}  # one response id throughout
    finished = {c.finished_command_id for c in port.sent_of(cmd.FinishCommand)}
    assert finished == {first.command_id, second.command_id}  # the dead task is ended too


def test_whole_answer_fails_over_and_reports_total_usage():
    port = DyingPort({"i0": True, "i1": True}, dies_after={"i0": 4})
    body = client(port).post("/v1/chat/completions", json={"model": M, "messages": USER}).json()
    assert body["choices"][0]["message"]["content"] == ANSWER
    assert body["usage"]["completion_tokens"] == len(WORDS)


def test_anthropic_and_ollama_streams_fail_over_too():
    port = DyingPort({"i0": True, "i1": True}, dies_after={"i0": 3})
    c = client(port)
    resp = c.post("/v1/messages", json={"model": M, "messages": USER, "max_tokens": 50, "stream": True})
    deltas = [json.loads(line[6:]) for line in resp.text.splitlines() if line.startswith("data: ")]
    assert "".join(d["delta"].get("text", "") for d in deltas if d["type"] == "content_block_delta") == ANSWER
    port = DyingPort({"i0": True, "i1": True}, dies_after={"i0": 1})
    lines = [json.loads(x) for x in client(port).post("/ollama/api/chat", json={"model": M, "messages": USER}).text.splitlines()]
    assert "".join(x["message"]["content"] for x in lines) == ANSWER and lines[-1]["done"]


def test_no_other_ready_instance_keeps_the_retryable_error():
    for ready in ({"i0": True}, {"i0": True, "i1": False}):
        port = DyingPort(ready, dies_after={"i0": 2})
        resp = client(port).post("/v1/chat/completions", json={"model": M, "messages": USER})
        assert resp.status_code == 500 and resp.json()["error"]["type"] == "instance_lost"
        assert len(port.generate_commands()) == 1


def test_failovers_are_bounded():
    port = DyingPort({"i0": True, "i1": True, "i2": True, "i3": True},
                     dies_after={"i0": 1, "i1": 2, "i2": 3, "i3": 4})
    text, datas = sse_text(client(port).post("/v1/chat/completions",
                                             json={"model": M, "messages": USER, "stream": True}))
    assert len(port.generate_commands()) == 1 + MAX_FAILOVERS
    assert [c.exclude_instances for c in port.generate_commands()] == [[], ["i0"], ["i0", "i1"]]
    assert text == "one two three " and datas[-1]["error"]["type"] == "instance_lost"


def test_a_request_error_is_not_failed_over():
    bad = ErrorChunk(error_type="context_length_exceeded", status_code=400, error_message="too long")
    port = DyingPort({"i0": True, "i1": True}, dies_after={"i0": 0}, error=bad)
    resp = client(port).post("/v1/chat/completions", json={"model": M, "messages": USER})
    assert resp.status_code == 400 and len(port.generate_commands()) == 1


def plan(error=LOST, **kw):
    params = TextGenerationTaskParams(model=M, input=[ChatMessage(role="user", content="x")],
                                      max_output_tokens=kw.pop("max_tokens", 10))
    args = dict(failovers=0, exclude=frozenset({"i0"}), sent_ids=[5, 6], text_sent=True)
    return plan_failover(kw.pop("state", state({"i0": True, "i1": True})), params, error, **{**args, **kw})


def test_plan_failover_decisions():
    params, exclude = plan()
    assert params.continue_token_ids == [5, 6] and exclude == {"i0"}
    session = ErrorChunk(error_type="session_changed", status_code=503, retryable=True, error_message="")
    assert plan(session) is None  # every stream fails on a session change: the client retries
    assert plan(LOST.model_copy(update={"retryable": False})) is None
    assert plan(failovers=MAX_FAILOVERS) is None
    assert plan(exclude=frozenset({"i0", "i1"})) is None
    assert plan(state=state({"i0": True, "i1": False})) is None  # the other one is still loading
    assert plan(sent_ids=[], text_sent=True) is None  # text without ids cannot be continued exactly
    assert plan(sent_ids=[], text_sent=False)[0].continue_token_ids is None  # died before a token: plain retry
    assert plan(sent_ids=list(range(10))) is None  # the budget is spent


def test_instances_of_silent_nodes_are_left_out_while_another_is_ready():
    s = state({"i0": True, "i1": True}, nodes={"i0": "b", "i1": "c"})
    assert unreachable_instances(s, M, {"b": 20.0, "c": 0.5}) == {"i0"}
    assert unreachable_instances(s, M, {"c": 0.5}) == {"i0"}  # gone from the live heartbeats
    assert unreachable_instances(s, M, {"b": 1.0, "c": 0.5}) == frozenset()
    assert unreachable_instances(s, M, {"b": 20.0, "c": 20.0}) == frozenset()  # never all of them
    loading = state({"i0": True, "i1": False}, nodes={"i0": "b", "i1": "c"})
    assert unreachable_instances(loading, M, {"b": 20.0, "c": 0.5}) == frozenset()


def test_a_new_request_avoids_the_instance_of_a_silent_node():
    class SilentB(DyingPort):
        def live_telemetry(self):
            return {}, {"b": 30.0, "c": 0.2}

    port = SilentB({"i0": True, "i1": True}, dies_after={"i0": 0})
    port.state = state({"i0": True, "i1": True}, nodes={"i0": "b", "i1": "c"})
    body = client(port).post("/v1/chat/completions", json={"model": M, "messages": USER}).json()
    assert body["choices"][0]["message"]["content"] == ANSWER
    assert [c.exclude_instances for c in port.generate_commands()] == [["i0"]]
