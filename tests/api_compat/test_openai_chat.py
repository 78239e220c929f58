"""OpenAI chat completions on a real node through the real `openai` client.

Usage is checked against the model's own tokenizer; tool calls and reasoning come from the
engine's scripted-reply test hook (see conftest.py); SSE details are read raw with httpx.
"""

import json

import httpx
import pytest

from skulk.testing.cluster import wait_until
from tests.api_compat.helpers import (COLORS, FORECAST_Q, LONG_PROMPT, OAI_TOOL, THINKING_REPLY, WEATHER_ANSWER,
                                      WEATHER_Q, M, after_tool_turn, prompt_len, sse_lines)

pytest.importorskip("skulk.runner.supervisor")
openai = pytest.importorskip("openai")
anthropic = pytest.importorskip("anthropic")


def test_chat_usage_matches_the_tokenizer_streamed_and_not(oai, tokenizer):
    whole = oai.chat.completions.create(model=M, messages=COLORS, max_tokens=5, temperature=0)
    assert whole.choices[0].finish_reason == "length"
    assert whole.usage.completion_tokens == 5
    assert whole.usage.prompt_tokens == prompt_len(tokenizer, COLORS)
    assert whole.usage.total_tokens == whole.usage.prompt_tokens + 5
    chunks = list(oai.chat.completions.create(model=M, messages=COLORS, max_tokens=5, temperature=0, stream=True,
                                              stream_options={"include_usage": True}))
    deltas = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert "".join(deltas) == whole.choices[0].message.content and 1 <= len(deltas) <= 5
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["length"]
    assert chunks[-1].choices == [] and chunks[-1].usage.model_dump() == whole.usage.model_dump()


def test_chat_accepts_every_sampling_knob_and_seed_repeats(oai):
    knobs = dict(model=M, messages=COLORS, max_tokens=4, temperature=0.8, top_p=0.9, seed=7, frequency_penalty=0.5,
                 presence_penalty=0.3, logprobs=True, top_logprobs=2, response_format={"type": "json_object"},
                 reasoning_effort="low", user="tester",
                 extra_body={"top_k": 20, "min_p": 0.05, "enable_thinking": False, "max_completion_tokens": 4})
    first, again = oai.chat.completions.create(**knobs), oai.chat.completions.create(**knobs)
    assert first.choices[0].message.content == again.choices[0].message.content
    assert first.usage.completion_tokens <= 4 and first.choices[0].logprobs is None


def test_chat_stop_sequence_ends_the_text_before_it(oai, claude):
    base = oai.chat.completions.create(model=M, messages=COLORS[1:], max_tokens=8, temperature=0)
    text = base.choices[0].message.content
    stop = text.split()[2]
    cut = oai.chat.completions.create(model=M, messages=COLORS[1:], max_tokens=8, temperature=0, stop=[stop])
    assert cut.choices[0].finish_reason == "stop"
    assert cut.choices[0].message.content == text[:text.index(stop)]
    msg = claude.messages.create(model=M, messages=COLORS[1:], max_tokens=8, stop_sequences=[stop],
                                 extra_body={"temperature": 0})  # this client version dropped sampling args
    assert (msg.stop_reason, msg.stop_sequence) == ("stop_sequence", stop)
    assert msg.content[0].text == text[:text.index(stop)]


def test_chat_tool_call_round_trip(oai, tokenizer):
    first = oai.chat.completions.create(model=M, messages=[WEATHER_Q], tools=[OAI_TOOL], temperature=0)
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    (call,) = choice.message.tool_calls
    assert call.function.name == "get_weather" and json.loads(call.function.arguments) == {"city": "Paris"}

    chunks = list(oai.chat.completions.create(model=M, messages=[FORECAST_Q], tools=[OAI_TOOL], stream=True))
    with_calls = [c.choices[0] for c in chunks if c.choices and c.choices[0].delta.tool_calls]
    assert len(with_calls) == 1 and with_calls[0].finish_reason == "tool_calls"
    (streamed,) = with_calls[0].delta.tool_calls
    assert streamed.function.name == "get_weather" and json.loads(streamed.function.arguments) == {"city": "Paris"}
    assert not any(c.choices[0].delta.content for c in chunks if c.choices)

    history = [WEATHER_Q, {"role": "assistant", "content": None, "tool_calls": [
        {"id": call.id, "type": "function", "function": {"name": "get_weather", "arguments": call.function.arguments}}]},
        {"role": "tool", "tool_call_id": call.id, "content": WEATHER_ANSWER}]
    answer = oai.chat.completions.create(model=M, messages=history, tools=[OAI_TOOL], max_tokens=4, temperature=0)
    assert answer.choices[0].finish_reason in ("stop", "length") and answer.choices[0].message.content
    assert answer.usage.prompt_tokens == after_tool_turn(tokenizer)


def test_chat_reasoning_content_is_split_from_the_answer(oai, tokenizer):
    ask = [{"role": "user", "content": "Think first: what is 2+2?"}]
    chunks = list(oai.chat.completions.create(model=M, messages=ask, stream=True,
                                              stream_options={"include_usage": True}))
    deltas = [c.choices[0].delta for c in chunks if c.choices]
    assert "".join((d.model_extra or {}).get("reasoning_content") or "" for d in deltas) == "Two plus two is four."
    assert "".join(d.content or "" for d in deltas) == "The answer is 4."
    tokens = len(tokenizer.encode(THINKING_REPLY, add_special_tokens=False)) + 1  # + EOS
    assert chunks[-1].usage.completion_tokens == tokens


def test_chat_sse_framing_and_bench_stats(node):
    body = {"model": M, "messages": COLORS, "max_tokens": 4, "temperature": 0, "stream": True,
            "stream_options": {"include_usage": True}}
    lines = sse_lines(node, "/v1/chat/completions", body)
    assert lines[0] == ": keep-alive" and lines[1].startswith(": command_id ")
    assert lines[-1] == "data: [DONE]" and lines[-2].startswith(": generation_stats {")
    stats = json.loads(lines[-2].split(" ", 2)[2])
    assert set(stats) == {"prompt_tps", "generation_tps", "prompt_tokens", "generation_tokens"}
    usage = json.loads(lines[-3][len("data: "):])["usage"]
    assert (stats["prompt_tokens"], stats["generation_tokens"]) == (usage["prompt_tokens"], 4)
    bench = node.post("/bench/chat/completions", {**body, "stream": True}, timeout=120).json()
    assert bench["object"] == "chat.completion" and bench["generation_stats"]["generation_tokens"] == 4
    assert bench["generation_stats"]["generation_tps"] > 0


def test_chat_errors(oai, node):
    with pytest.raises(openai.NotFoundError):
        oai.chat.completions.create(model="nobody/nothing", messages=COLORS)
    with pytest.raises(openai.BadRequestError) as empty:
        oai.chat.completions.create(model=M, messages=[])
    assert empty.value.param == "messages"
    with pytest.raises(openai.UnprocessableEntityError) as bad:
        oai.chat.completions.create(model=M, messages=COLORS, temperature=5)
    assert bad.value.param == "temperature"
    for too_much in ({"messages": [{"role": "user", "content": LONG_PROMPT}]},
                     {"messages": COLORS, "max_tokens": 10_000_000}):
        with pytest.raises(openai.BadRequestError) as ctx:
            oai.chat.completions.create(model=M, **too_much)
        assert ctx.value.status_code == 400 and ctx.value.code == "context_length_exceeded"
    lines = sse_lines(node, "/v1/chat/completions", {"model": M, "stream": True,
                                                      "messages": [{"role": "user", "content": LONG_PROMPT}]})
    error = json.loads(lines[-2][len("data: "):])["error"]
    assert error["code"] == "context_length_exceeded" and lines[-1] == "data: [DONE]"


def _running_generations(node) -> list:
    tasks = node.get("/state")["tasks"].values()
    return [t for t in tasks if t.get("TextGeneration", {}).get("taskStatus") in ("Pending", "Running")]


def test_client_that_hangs_up_leaves_no_task_behind(node, oai):
    body = {"model": M, "messages": [{"role": "user", "content": "Write a very long story."}], "max_tokens": 3000,
            "temperature": 0}
    with httpx.stream("POST", node.url + "/v1/chat/completions", json={**body, "stream": True}, timeout=60,
                      trust_env=False) as r:
        next(line for line in r.iter_lines() if line.startswith("data: {"))
    wait_until(lambda: not _running_generations(node), 10, message="streamed task cancelled")
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(node.url + "/v1/chat/completions", json=body, timeout=1.5, trust_env=False)
    wait_until(lambda: not _running_generations(node), 10, message="whole-body task cancelled")
    assert oai.chat.completions.create(model=M, messages=COLORS, max_tokens=2).usage.completion_tokens == 2
