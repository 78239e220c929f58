"""Size bounds on generation requests, checked on the canonical task params of every API flavour.

`check_limits` runs after a request is translated and before anything is sent: too many
messages, stop strings or tools, a prompt over `api.max_prompt_chars`, an output budget over
MAX_OUTPUT_TOKENS or a value that cannot travel (a non-finite float, an integer beyond 64 bits)
get 400 with `param` naming the field as that API spells it. `api.max_prompt_chars` is capped
(skulk.config.model) so an accepted request always encodes under the runner's frame limit.
"""

import json
import math
from dataclasses import dataclass
from typing import Any

from skulk.config.model import ApiSettings
from skulk.errors import BadRequest
from skulk.faults import count
from skulk.types.tasks import TextGenerationTaskParams

MAX_MESSAGES = 4096
MAX_STOP_STRINGS = 16
MAX_STOP_CHARS = 1000  # per stop string
MAX_TOOLS = 256
MAX_TOOL_CHARS = 64 * 1024  # one tool's JSON definition
MAX_OUTPUT_TOKENS = 1_000_000
_INT64 = (-(2**63), 2**63 - 1)
_NUMBERS = ("temperature", "top_p", "top_k", "min_p", "seed", "repetition_penalty", "repetition_context_size",
            "frequency_penalty", "presence_penalty", "top_logprobs")


@dataclass(frozen=True)
class FieldNames:
    """How one API names the fields the limits apply to (its `param` in a 400)."""

    messages: str = "messages"
    stop: str = "stop"
    tools: str = "tools"
    max_tokens: str = "max_tokens"
    options: str = ""  # prefix of sampling fields, e.g. "options." for Ollama


def api_settings(port: Any) -> ApiSettings:
    """The node's `api` settings; defaults for a port without settings (a test fake)."""
    settings = getattr(port, "settings", None)
    api = getattr(settings, "api", None)
    return api if isinstance(api, ApiSettings) else ApiSettings()


def _refuse(message: str, param: str, code: str | None = "request_too_large") -> BadRequest:
    count("api.request_limit", param)
    return BadRequest(message, param=param, code=code)


def _json_chars(value: Any) -> int:
    return len(json.dumps(value, ensure_ascii=False, default=str))


def _prompt_chars(params: TextGenerationTaskParams) -> int:
    total = 0
    for m in params.input:
        total += len(m.content) + len(m.name or "") + len(m.tool_call_id or "")
        total += _json_chars(m.tool_calls) if m.tool_calls else 0
    return total


def _check_stop(stop: list[str] | None, names: FieldNames) -> None:
    if not stop:
        return
    if len(stop) > MAX_STOP_STRINGS:
        raise _refuse(f"at most {MAX_STOP_STRINGS} stop strings are accepted, got {len(stop)}", names.stop)
    for i, s in enumerate(stop):
        if len(s) > MAX_STOP_CHARS:
            raise _refuse(f"a stop string may hold at most {MAX_STOP_CHARS} characters", f"{names.stop}[{i}]")


def _tool_chars(tools: list[dict[str, Any]] | None, names: FieldNames) -> int:
    if not tools:
        return 0
    if len(tools) > MAX_TOOLS:
        raise _refuse(f"at most {MAX_TOOLS} tools are accepted, got {len(tools)}", names.tools)
    total = 0
    for i, tool in enumerate(tools):
        chars = _json_chars(tool)
        if chars > MAX_TOOL_CHARS:
            raise _refuse(f"a tool definition may hold at most {MAX_TOOL_CHARS} characters of JSON",
                          f"{names.tools}[{i}]")
        total += chars
    return total


def _fits_msgpack(value: Any) -> bool:
    """No integer beyond 64 bits anywhere inside (msgpack cannot carry one); walked without recursion."""
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, dict):
            stack.extend(v.values())
        elif isinstance(v, (list, tuple)):
            stack.extend(v)
        elif isinstance(v, int) and not -(2**63) <= v < 2**64:
            return False
    return True


def _check_numbers(params: TextGenerationTaskParams, names: FieldNames) -> None:
    budget = params.max_output_tokens
    if budget is not None and not 1 <= budget <= MAX_OUTPUT_TOKENS:
        # No model's context holds more: the code clients already handle for a too-large budget.
        raise _refuse(f"context_length_exceeded: {names.max_tokens} ({budget}) must be between 1 and "
                      f"{MAX_OUTPUT_TOKENS}", names.max_tokens, "context_length_exceeded")
    for name in _NUMBERS:
        value = getattr(params, name)
        if isinstance(value, float) and not math.isfinite(value):
            raise _refuse(f"{name} must be a finite number", names.options + name, None)
        if isinstance(value, int) and not _INT64[0] <= value <= _INT64[1]:
            raise _refuse(f"{name} must fit in a signed 64-bit integer", names.options + name, None)
    if not _fits_msgpack(params.tools):
        raise _refuse("tools hold an integer beyond 64 bits", names.tools)
    if not _fits_msgpack([m.tool_calls for m in params.input]):
        raise _refuse("tool call arguments hold an integer beyond 64 bits", names.messages)


def check_limits(params: TextGenerationTaskParams, limits: ApiSettings, names: FieldNames = FieldNames()) -> None:
    """400 (BadRequest, `param` set) for a request over any bound; nothing otherwise."""
    if len(params.input) > MAX_MESSAGES:
        raise _refuse(f"at most {MAX_MESSAGES} messages are accepted, got {len(params.input)}", names.messages)
    _check_stop(params.stop, names)
    _check_numbers(params, names)
    chars = _prompt_chars(params) + _tool_chars(params.tools, names) + sum(len(s) for s in params.stop or ())
    if chars > limits.max_prompt_chars:
        raise _refuse(f"the request holds {chars} characters of messages, tools and stop strings; at most "
                      f"{limits.max_prompt_chars} are accepted (api.max_prompt_chars)", names.messages)
