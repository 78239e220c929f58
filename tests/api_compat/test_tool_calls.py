"""The streaming splitter of generated text into visible text, reasoning and tool calls."""

import json

import pytest

from skulk.api.tool_calls import OutputParser, parse_calls

CALL = '<tool_call>{"name": "get_weather", "arguments": {"city": "Paris"}}</tool_call>'


def run(text: str, *, tools: bool = True, step: int = 1):
    parser = OutputParser(parse_tools=tools)
    pieces = []
    for i in range(0, len(text), step):
        pieces += parser.feed(text[i:i + step])
    pieces += parser.finish()
    joined = {k: "".join(p.text for p in pieces if p.kind == k) for k in ("text", "reasoning")}
    return joined, [(c.name, json.loads(c.arguments)) for c in parser.tool_calls]


@pytest.mark.parametrize("step", [1, 3, 1000])
def test_tagged_calls_are_parsed_however_the_text_is_split(step):
    out, calls = run("Let me check." + CALL + "\n" + CALL.replace("Paris", "Rome"), step=step)
    assert out["text"] == "Let me check." and calls == [("get_weather", {"city": "Paris"}),
                                                        ("get_weather", {"city": "Rome"})]


def test_bare_json_is_a_call_only_when_it_is_the_whole_reply():
    assert run('{"name": "f", "parameters": {"x": 1}}')[1] == [("f", {"x": 1})]
    assert run('[{"name": "f", "arguments": "{\\"x\\": 2}"}, {"name": "g"}]')[1] == [("f", {"x": 2}), ("g", {})]
    assert run('{"answer": 42}') == ({"text": '{"answer": 42}', "reasoning": ""}, [])
    assert run('Here: {"name": "f", "arguments": {}}')[1] == []


def test_without_tools_tags_are_text_and_thinking_still_splits():
    out, calls = run("<think>plan</think>\n\nHi " + CALL, tools=False)
    assert calls == [] and out == {"text": "Hi " + CALL, "reasoning": "plan"}


def test_partial_tags_are_held_back_then_released():
    parser = OutputParser(parse_tools=True)
    assert [p.text for p in parser.feed("a <tool_c")] == ["a "]
    assert [p.text for p in parser.feed("alm")] == ["<tool_calm"]
    assert parser.finish() == []


def test_broken_calls_show_as_text_and_unclosed_think_is_reasoning():
    assert run("<tool_call>not json</tool_call> ok")[0]["text"] == "<tool_call>not json</tool_call> ok"
    assert run('<tool_call>{"name": "f", "arguments": {}}')[1] == [("f", {})]  # EOS before the closing tag
    assert run("<think>still thinking")[0] == {"text": "", "reasoning": "still thinking"}
    assert parse_calls('{"name": "f", "arguments": [1]}') is None
