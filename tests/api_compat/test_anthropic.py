"""Anthropic Messages API on a real node through the real `anthropic` client.

This client version no longer takes temperature as an argument; it goes in extra_body.
"""

import httpx
import pytest

from tests.api_compat.helpers import (COLORS, CITY_SCHEMA, FORECAST_Q, LONG_PROMPT, WEATHER_ANSWER, WEATHER_ARGS, M,
                                      after_tool_turn, prompt_len)

pytest.importorskip("skulk.runner.supervisor")
anthropic = pytest.importorskip("anthropic")

TOOL = {"name": "get_weather", "description": "Current weather", "input_schema": CITY_SCHEMA}
GREEDY = {"temperature": 0}


def test_messages_whole_and_streamed(claude, tokenizer):
    ask = dict(model=M, system=COLORS[0]["content"], messages=COLORS[1:], max_tokens=5, extra_body=GREEDY)
    whole = claude.messages.create(**ask)
    assert whole.stop_reason == "max_tokens" and whole.content[0].type == "text" and whole.content[0].text
    assert (whole.usage.input_tokens, whole.usage.output_tokens) == (prompt_len(tokenizer, COLORS), 5)

    with claude.messages.stream(**ask) as stream:
        types = [e.type for e in stream]
        final = stream.get_final_message()
    assert types[0] == "message_start" and types[-1] == "message_stop"
    assert final.content[0].text == whole.content[0].text and final.stop_reason == "max_tokens"
    assert final.usage.model_dump(include={"input_tokens", "output_tokens"}) == whole.usage.model_dump(
        include={"input_tokens", "output_tokens"})
    blocks = claude.messages.create(**{**ask, "system": [{"type": "text", "text": COLORS[0]["content"]}]})
    assert blocks.content[0].text == whole.content[0].text


def test_messages_tool_use_round_trip(claude, tokenizer):
    with claude.messages.stream(model=M, max_tokens=32, tools=[TOOL], messages=[FORECAST_Q]) as stream:
        deltas = [e.delta.type for e in stream if e.type == "content_block_delta"]
        first = stream.get_final_message()  # the client assembles the tool input from input_json_delta
    assert first.stop_reason == "tool_use" and deltas == ["input_json_delta"]
    (use,) = [b for b in first.content if b.type == "tool_use"]
    assert use.name == "get_weather" and use.input == WEATHER_ARGS and use.id.startswith("toolu_")

    answer = claude.messages.create(model=M, max_tokens=4, tools=[TOOL], extra_body=GREEDY, messages=[
        FORECAST_Q, {"role": "assistant", "content": [b.model_dump() for b in first.content]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id, "content": WEATHER_ANSWER}]}])
    assert answer.stop_reason in ("end_turn", "max_tokens") and answer.content[0].text
    assert answer.usage.input_tokens == after_tool_turn(tokenizer, FORECAST_Q)


def test_messages_thinking_blocks(claude):
    ask = dict(model=M, max_tokens=32, messages=[{"role": "user", "content": "Think first: what is 2+2?"}])
    with claude.messages.stream(**ask) as stream:
        deltas = {e.delta.type for e in stream if e.type == "content_block_delta"}
        final = stream.get_final_message()
    assert deltas == {"thinking_delta", "text_delta"} and final.stop_reason == "end_turn"
    assert [b.type for b in final.content] == ["thinking", "text"]
    assert (final.content[0].thinking, final.content[1].text) == ("Two plus two is four.", "The answer is 4.")


def test_messages_errors_use_anthropic_shape(claude, node):
    with pytest.raises(anthropic.NotFoundError) as missing:
        claude.messages.create(model="nobody/nothing", max_tokens=4, messages=COLORS[1:])
    assert missing.value.type == "not_found_error"
    resp = httpx.post(node.url + "/v1/messages", json={"model": M, "messages": COLORS[1:]}, trust_env=False)
    assert resp.status_code == 400
    assert resp.json()["type"] == "error" and resp.json()["error"]["type"] == "invalid_request_error"
    assert "max_tokens" in resp.json()["error"]["message"]
    with pytest.raises(anthropic.BadRequestError):
        claude.messages.create(model=M, max_tokens=4, messages=[{"role": "user", "content": LONG_PROMPT}])
    with pytest.raises(anthropic.APIStatusError) as streamed:
        with claude.messages.stream(model=M, max_tokens=4, messages=[{"role": "user", "content": LONG_PROMPT}]) as s:
            list(s)
    assert streamed.value.type == "invalid_request_error"
