"""What the API compatibility tests share: the scripted replies, prompts, and small helpers."""

import json

import httpx

from tests.serving.conftest import DEFAULT_MODEL as M  # noqa: F401

WEATHER_ARGS = {"city": "Paris"}
WEATHER_CALL = '<tool_call>{"name":"get_weather","arguments":{"city":"Paris"}}</tool_call>'
WEATHER_JSON = '{"name":"get_weather","arguments":{"city":"Paris"}}'  # a bare JSON reply is a call too
THINKING_REPLY = "<think>Two plus two is four.</think>The answer is 4."
# trigger in the last user message -> the model's reply (the engine's SKULK_TEST_SCRIPTED_REPLIES hook)
SCRIPTS = {"weather in Paris": WEATHER_CALL, "forecast for Paris": WEATHER_JSON, "Think first": THINKING_REPLY}

COLORS = [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Name three colors."}]
WEATHER_Q = {"role": "user", "content": "What's the weather in Paris?"}
FORECAST_Q = {"role": "user", "content": "What's the forecast for Paris?"}
WEATHER_ANSWER = "18 degrees and sunny"
CITY_SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
OAI_TOOL = {"type": "function", "function": {"name": "get_weather", "description": "Current weather",
                                             "parameters": CITY_SCHEMA}}
LONG_PROMPT = "hello " * 9000  # more tokens than the model's context window


def prompt_len(tokenizer, messages) -> int:
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return len(tokenizer.encode(text, add_special_tokens=False))


def after_tool_turn(tokenizer, question=WEATHER_Q) -> int:
    """The prompt once the call and its result are in: the call inlined (SmolLM2's template has no
    tool_calls), the result as a `tool` turn. Equal counts mean the result reached the model."""
    call = json.dumps({"name": "get_weather", "arguments": WEATHER_ARGS})
    return prompt_len(tokenizer, [question, {"role": "assistant", "content": f"<tool_call>{call}</tool_call>"},
                                  {"role": "tool", "content": WEATHER_ANSWER}])


def sse_lines(node, path, body) -> list[str]:
    with httpx.stream("POST", node.url + path, json=body, timeout=120, trust_env=False) as r:
        assert r.status_code == 200, r.read()
        return [line for line in r.iter_lines() if line]
