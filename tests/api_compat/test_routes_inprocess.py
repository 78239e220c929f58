"""The three wire formats and their request translation, in process against a scripted port."""

import json

from starlette.testclient import TestClient

from skulk.api.app import create_app
from skulk.models import DEFAULT_MODEL_ID as M
from skulk.types import commands as cmd
from tests.api_compat.fake_port import ScriptedPort, reply, too_long

CALL = '<tool_call>{"name": "get_weather", "arguments": {"city": "Paris"}}</tool_call>'
TOOL = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}
USER = [{"role": "user", "content": "hi"}]


def client(port: ScriptedPort) -> TestClient:
    return TestClient(create_app(port), raise_server_exceptions=False, backend="trio")


def events(resp) -> list[tuple[str, dict]]:
    """(event name, data) for every `event:` of an SSE body."""
    out = []
    for block in resp.text.split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines() if not line.startswith(":"))
        if "event" in lines:
            out.append((lines["event"], json.loads(lines["data"])))
    return out


def test_chat_tool_calls_only_when_tools_were_offered():
    port = ScriptedPort(lambda p: reply("<think>hmm</think>" + CALL))
    c = client(port)
    body = c.post("/v1/chat/completions", json={"model": M, "messages": USER, "tools": [TOOL]}).json()
    message = body["choices"][0]["message"]
    assert body["choices"][0]["finish_reason"] == "tool_calls" and message["content"] is None
    assert message["reasoning_content"] == "hmm"
    assert json.loads(message["tool_calls"][0]["function"]["arguments"]) == {"city": "Paris"}
    plain = c.post("/v1/chat/completions", json={"model": M, "messages": USER}).json()["choices"][0]
    assert plain["message"]["content"] == CALL and plain["finish_reason"] == "stop"
    off = {"model": M, "messages": USER, "tools": [TOOL], "tool_choice": "none"}
    assert c.post("/v1/chat/completions", json=off).json()["choices"][0]["message"]["content"] == CALL
    assert port.params.tools is None  # tool_choice none: the template never sees the tools


def test_chat_history_with_tool_calls_reaches_the_task():
    port = ScriptedPort()
    history = [{"role": "developer", "content": [{"type": "text", "text": "be brief"}]}, *USER,
               {"role": "assistant", "content": None, "tool_calls": [
                   {"id": "c1", "type": "function", "function": {"name": "f", "arguments": '{"a": 1}'}}]},
               {"role": "tool", "tool_call_id": "c1", "content": "42"}]
    resp = client(port).post("/v1/chat/completions", json={"model": M, "messages": history, "stop": "x",
                                                            "max_completion_tokens": 9, "presence_penalty": 0.5})
    assert resp.status_code == 200
    msgs = port.params.input
    assert [m.role for m in msgs] == ["developer", "user", "assistant", "tool"] and msgs[0].content == "be brief"
    assert msgs[2].tool_calls == [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": {"a": 1}}}]
    assert (msgs[3].tool_call_id, msgs[3].content) == ("c1", "42")
    assert (port.params.stop, port.params.max_output_tokens, port.params.presence_penalty) == (["x"], 9, 0.5)


def test_chat_validation_names_the_field():
    c = client(ScriptedPort(context_limit=100))
    cases = [
        ({"model": M, "messages": USER, "n": 2}, 422, "n"),
        ({"model": M, "messages": [{"role": "user", "content": [{"type": "image_url"}]}]}, 400,
         "messages[0].content[0].type"),
        ({"model": M, "messages": [{"role": "assistant", "content": "", "tool_calls": [
            {"id": "c", "function": {"name": "f", "arguments": "[1"}}]}]}, 400,
         "messages[0].tool_calls[0].function.arguments"),
        ({"model": M, "messages": [{"role": "user", "content": "  "}]}, 400, "messages"),
        ({"model": M, "messages": USER, "max_tokens": 100}, 400, "max_tokens"),
        ({"model": "nobody/nothing", "messages": USER}, 404, "model"),
    ]
    for body, status, param in cases:
        resp = c.post("/v1/chat/completions", json=body)
        assert (resp.status_code, resp.json()["error"]["param"]) == (status, param), body


def test_engine_errors_become_http_errors_when_not_streamed():
    c = client(ScriptedPort(too_long))
    resp = c.post("/v1/chat/completions", json={"model": M, "messages": USER})
    assert resp.status_code == 400 and resp.json()["error"]["code"] == "context_length_exceeded"
    resp = c.post("/v1/messages", json={"model": M, "messages": USER, "max_tokens": 5})
    assert resp.status_code == 400 and resp.json()["error"]["type"] == "invalid_request_error"
    resp = c.post("/v1/responses", json={"model": M, "input": "hi", "stream": True})
    assert events(resp)[-1][0] == "error" and events(resp)[-1][1]["code"] == "context_length_exceeded"


def test_anthropic_body_blocks_and_stop_sequence():
    port = ScriptedPort(lambda p: reply("<think>hmm</think>Sure." + CALL))
    tools = [{"name": "get_weather", "input_schema": {"type": "object"}}]
    body = client(port).post("/v1/messages", json={"model": M, "max_tokens": 50, "messages": USER,
                                                   "tools": tools}).json()
    assert [b["type"] for b in body["content"]] == ["thinking", "text", "tool_use"]
    assert body["content"][2]["input"] == {"city": "Paris"} and body["stop_reason"] == "tool_use"
    port = ScriptedPort(lambda p: reply("Hi", stop_sequence="END"))
    body = client(port).post("/v1/messages", json={"model": M, "max_tokens": 5, "messages": USER,
                                                   "stop_sequences": ["END"]}).json()
    assert (body["stop_reason"], body["stop_sequence"], body["usage"]) == (
        "stop_sequence", "END", {"input_tokens": 7, "output_tokens": 3})


def test_anthropic_turns_become_chat_messages():
    port = ScriptedPort()
    messages = [{"role": "user", "content": "weather?"},
                {"role": "assistant", "content": [{"type": "text", "text": "Checking."},
                                                  {"type": "tool_use", "id": "t1", "name": "f", "input": {"a": 1}}]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1",
                                              "content": [{"type": "text", "text": "42"}]},
                                             {"type": "text", "text": "thanks"}]}]
    resp = client(port).post("/v1/messages", json={"model": M, "max_tokens": 5, "messages": messages,
                                                   "system": [{"type": "text", "text": "be brief"}]})
    assert resp.status_code == 200
    assert [(m.role, m.content) for m in port.params.input] == [
        ("system", "be brief"), ("user", "weather?"), ("assistant", "Checking."), ("tool", "42"), ("user", "thanks")]
    assert port.params.input[2].tool_calls[0]["function"] == {"name": "f", "arguments": {"a": 1}}
    bad = client(port).post("/v1/messages", json={"model": M, "max_tokens": 5, "messages": [
        {"role": "user", "content": [{"type": "image", "source": {}}]}]})
    assert bad.status_code == 400 and bad.json()["type"] == "error"


def test_anthropic_stream_event_order():
    port = ScriptedPort(lambda p: reply("Hi" + CALL))
    resp = client(port).post("/v1/messages", json={"model": M, "max_tokens": 50, "messages": USER, "stream": True,
                                                   "tools": [{"name": "get_weather", "input_schema": {}}]})
    names = [name for name, _ in events(resp)]
    assert names == ["message_start", "content_block_start", "content_block_delta", "content_block_delta",
                     "content_block_stop", "content_block_start", "content_block_delta", "content_block_stop",
                     "message_delta", "message_stop"]
    delta = dict(events(resp))["message_delta"]
    assert delta["delta"]["stop_reason"] == "tool_use" and delta["usage"]["input_tokens"] == 7


def test_responses_items_and_function_calls():
    port = ScriptedPort(lambda p: reply("<think>hmm</think>" + CALL))
    c = client(port)
    tools = [{"type": "function", "name": "get_weather", "parameters": {"type": "object"}}]
    body = c.post("/v1/responses", json={"model": M, "input": "hi", "tools": tools}).json()
    assert [o["type"] for o in body["output"]] == ["reasoning", "function_call"]
    assert body["status"] == "completed" and body["usage"]["output_tokens"] == len("<think>hmm</think>" + CALL) + 1
    items = [{"role": "user", "content": [{"type": "input_text", "text": "q"}]},
             {"type": "function_call", "call_id": "a", "name": "f", "arguments": "{}"},
             {"type": "function_call", "call_id": "b", "name": "g", "arguments": "{}"},
             {"type": "function_call_output", "call_id": "a", "output": "1"}]
    assert c.post("/v1/responses", json={"model": M, "input": items, "instructions": "sys"}).status_code == 200
    assert [m.role for m in port.params.input] == ["system", "user", "assistant", "tool"]
    assert [t["id"] for t in port.params.input[2].tool_calls] == ["a", "b"]
    for bad, param in [({"previous_response_id": "r1"}, "previous_response_id"),
                       ({"tools": [{"type": "web_search"}]}, "tools[0].type")]:
        resp = c.post("/v1/responses", json={"model": M, "input": "hi", **bad})
        assert (resp.status_code, resp.json()["error"]["param"]) == (400, param)


def test_streams_close_the_generation_and_end_with_done():
    port = ScriptedPort()
    resp = client(port).post("/v1/chat/completions", json={"model": M, "messages": USER, "stream": True})
    lines = [line for line in resp.text.splitlines() if line]
    assert lines[:2] == [": keep-alive", lines[1]] and lines[1].startswith(": command_id ")
    assert lines[-1] == "data: [DONE]" and lines[-2].startswith(": generation_stats ")
    assert [type(c) for c in port.sent] == [cmd.GenerateText, cmd.FinishCommand]
