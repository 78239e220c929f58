"""OpenAI Responses API on a real node through the real `openai` client."""

import json

import pytest

from tests.api_compat.helpers import (COLORS, FORECAST_Q, LONG_PROMPT, WEATHER_ANSWER, WEATHER_ARGS, M,
                                      after_tool_turn, prompt_len)

pytest.importorskip("skulk.runner.supervisor")
openai = pytest.importorskip("openai")

FUNCTION_TOOL = {"type": "function", "name": "get_weather", "description": "Current weather",
                 "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}


def _before(types: list[str], *names: str) -> bool:
    return [types.index(n) for n in names] == sorted(types.index(n) for n in names)


def test_responses_whole_and_streamed(oai, tokenizer):
    ask = dict(model=M, instructions=COLORS[0]["content"], input=COLORS[1]["content"], max_output_tokens=5,
               temperature=0)
    whole = oai.responses.create(**ask)
    assert whole.status == "incomplete" and whole.incomplete_details.reason == "max_output_tokens"
    assert whole.output_text and whole.output[0].type == "message"
    assert (whole.usage.input_tokens, whole.usage.output_tokens) == (prompt_len(tokenizer, COLORS), 5)

    events = list(oai.responses.create(**ask, stream=True))
    types = [e.type for e in events]
    assert types[:2] == ["response.created", "response.in_progress"] and types[-1] == "response.incomplete"
    assert _before(types, "response.output_item.added", "response.content_part.added", "response.output_text.delta",
                   "response.output_text.done", "response.content_part.done", "response.output_item.done")
    assert [e.sequence_number for e in events] == list(range(len(events)))
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text == whole.output_text == next(e.text for e in events if e.type == "response.output_text.done")
    assert events[-1].response.usage.output_tokens == 5 and events[-1].response.output[0].content[0].text == text


def test_responses_function_call_round_trip(oai, tokenizer):
    first = oai.responses.create(model=M, input=FORECAST_Q["content"], tools=[FUNCTION_TOOL])
    assert first.status == "completed"
    (call,) = [o for o in first.output if o.type == "function_call"]
    assert call.name == "get_weather" and json.loads(call.arguments) == WEATHER_ARGS

    events = list(oai.responses.create(model=M, input=FORECAST_Q["content"], tools=[FUNCTION_TOOL], stream=True))
    done = next(e for e in events if e.type == "response.function_call_arguments.done")
    assert json.loads(done.arguments) == WEATHER_ARGS
    assert events[-1].type == "response.completed"
    assert [o.type for o in events[-1].response.output] == ["function_call"]

    answer = oai.responses.create(model=M, tools=[FUNCTION_TOOL], max_output_tokens=4, temperature=0, input=[
        {"role": "user", "content": FORECAST_Q["content"]},
        {"type": "function_call", "call_id": call.call_id, "name": call.name, "arguments": call.arguments},
        {"type": "function_call_output", "call_id": call.call_id, "output": WEATHER_ANSWER}])
    assert answer.output_text and answer.usage.input_tokens == after_tool_turn(tokenizer, FORECAST_Q)


def test_responses_reasoning_and_errors(oai):
    whole = oai.responses.create(model=M, input="Think first: what is 2+2?")
    assert [o.type for o in whole.output] == ["reasoning", "message"]
    assert whole.output[0].summary[0].text == "Two plus two is four." and whole.output_text == "The answer is 4."
    with pytest.raises(openai.NotFoundError):
        oai.responses.create(model="nobody/nothing", input="hi")
    with pytest.raises(openai.BadRequestError) as bad:
        oai.responses.create(model=M, input="hi", max_output_tokens=0)
    assert bad.value.param == "max_output_tokens"
    with pytest.raises(openai.BadRequestError) as ctx:
        oai.responses.create(model=M, input=LONG_PROMPT)
    assert ctx.value.code == "context_length_exceeded"
    events = list(oai.responses.create(model=M, input=LONG_PROMPT, stream=True))
    assert events[-1].type == "error" and events[-1].code == "context_length_exceeded"
