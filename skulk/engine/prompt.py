"""Chat messages -> prompt token ids, and the token budget check."""

import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # llama_text.GgufChat offers the same surface
    from mlx_lm.tokenizer_utils import TokenizerWrapper

from skulk.engine.errors import ContextLengthExceeded, InvalidSamplingParams
from skulk.types.tasks import ChatMessage, TextGenerationTaskParams

DEFAULT_MAX_TOKENS = 2048  # when neither the request nor a context limit bounds the output
_ROLE_ALIASES = {"developer": "system"}  # many templates only know system/user/assistant/tool


def _message(m: ChatMessage, template_knows_calls: bool) -> dict:
    d: dict = {"role": _ROLE_ALIASES.get(m.role, m.role), "content": m.content}
    if m.tool_calls and template_knows_calls:
        d["tool_calls"] = m.tool_calls
    elif m.tool_calls:  # the template would drop them: show the model its earlier calls as text
        d["content"] += "".join(f"<tool_call>{json.dumps(c.get('function', c))}</tool_call>" for c in m.tool_calls)
    d.update({k: v for k, v in (("tool_call_id", m.tool_call_id), ("name", m.name)) if v})
    return d


def prompt_tokens(tokenizer: "TokenizerWrapper", params: TextGenerationTaskParams) -> list[int]:
    """Apply the tokenizer's chat template with the generation prompt appended."""
    knows_calls = "tool_calls" in str(getattr(tokenizer, "chat_template", None) or "")
    messages = [_message(m, knows_calls) for m in params.input]
    if not messages:
        raise InvalidSamplingParams("a request needs at least one message", param="messages")
    if not getattr(tokenizer, "has_chat_template", False):
        text = "".join(f"{m['role']}: {m['content']}\n" for m in messages) + "assistant: "
        return list(tokenizer.encode(text))
    kwargs = {}
    if params.tools:
        kwargs["tools"] = params.tools
    if params.enable_thinking is not None:
        kwargs["enable_thinking"] = params.enable_thinking
    ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, **kwargs)
    return list(ids)


def continued_prompt(tokenizer: "TokenizerWrapper", params: TextGenerationTaskParams,
                     n_vocab: int | None = None) -> tuple[list[int], int]:
    """The templated prompt plus a failover's already-generated tokens, and how many those are."""
    prefix = list(params.continue_token_ids or [])
    if n_vocab is not None and any(t >= n_vocab for t in prefix):
        raise InvalidSamplingParams("continue_token_ids holds a token outside the vocabulary",
                                    param="continue_token_ids")
    return prompt_tokens(tokenizer, params) + prefix, len(prefix)


def output_budget(n_prompt: int, requested: int | None, context_limit: int, already: int = 0) -> int:
    """max tokens for a request; ContextLengthExceeded when prompt + output cannot fit.

    `already`: tokens a continued request generated before (part of n_prompt, and of its budget)."""
    if requested is not None and requested <= 0:
        raise InvalidSamplingParams("max_tokens must be > 0", param="max_tokens")
    total = requested if requested is not None else DEFAULT_MAX_TOKENS if context_limit <= 0 else None
    if already and total is not None and total <= already:
        raise InvalidSamplingParams("continue_token_ids already fill max_tokens", param="max_tokens")
    if context_limit <= 0:
        return (requested or DEFAULT_MAX_TOKENS) - already
    budget = requested - already if requested is not None else context_limit - n_prompt
    if budget <= 0 or n_prompt + budget > context_limit:
        raise ContextLengthExceeded(
            f"This model's maximum context length is {context_limit} tokens; the request has "
            f"{n_prompt} prompt tokens and asks for {budget if budget > 0 else 'at least 1'} "
            "completion tokens.",
            param="messages",
        )
    return budget
