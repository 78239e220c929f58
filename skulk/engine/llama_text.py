"""Text in and out of a GGUF model: its own chat template (Jinja, rendered the way Hugging Face
tokenizers render it) and an incremental UTF-8 detokenizer for skulk.engine.textstream.

GgufChat has the surface skulk.engine.prompt.prompt_tokens uses, so prompts are built by the
same code as MLX's (roles, tool calls, enable_thinking) from the template in the GGUF file.
"""

import codecs
import json
from datetime import datetime
from typing import Any, Protocol

from jinja2.exceptions import TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from skulk.engine.errors import InvalidSamplingParams


class Vocab(Protocol):
    def tokenize(self, text: str, *, add_special: bool = False, parse_special: bool = True) -> list[int]: ...
    def piece(self, token: int) -> bytes: ...
    def token_text(self, token: int) -> str: ...
    def chat_template(self) -> str | None: ...
    @property
    def bos(self) -> int: ...
    @property
    def eos(self) -> int: ...


def _raise(message: str) -> None:
    raise TemplateError(message)


def _environment() -> ImmutableSandboxedEnvironment:
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    env.filters["tojson"] = lambda v, indent=None, **_: json.dumps(v, ensure_ascii=False, indent=indent)
    env.globals["raise_exception"] = _raise
    env.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
    return env


class GgufChat:
    """Chat template + tokenizer of one GGUF vocabulary (the tokenizer side of prompt.py)."""

    def __init__(self, vocab: Vocab):
        self._vocab = vocab
        self.chat_template = vocab.chat_template()
        self.has_chat_template = bool(self.chat_template)
        self._template = _environment().from_string(self.chat_template) if self.chat_template else None
        self._specials = {"bos_token": _safe_text(vocab, vocab.bos), "eos_token": _safe_text(vocab, vocab.eos)}

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        return self._vocab.tokenize(text, add_special=add_special_tokens, parse_special=True)

    def apply_chat_template(self, messages: list[dict], add_generation_prompt: bool = True, **kwargs: Any) -> list[int]:
        if self._template is None:
            raise InvalidSamplingParams("this model has no chat template", param="messages")
        try:
            text = self._template.render(messages=messages, add_generation_prompt=add_generation_prompt,
                                         **self._specials, **kwargs)
        except TemplateError as exc:
            raise InvalidSamplingParams(f"the model's chat template refused the messages: {exc}",
                                        param="messages") from None
        # Like transformers: the template writes any BOS itself, so none is added here.
        return self._vocab.tokenize(text, add_special=False, parse_special=True)


def _safe_text(vocab: Vocab, token: int) -> str:
    return vocab.token_text(token) if token >= 0 else ""


class GgufDetokenizer:
    """Streaming detokenizer (mlx-lm's StreamingDetokenizer surface): bytes of each token's
    piece go through an incremental UTF-8 decoder, so a character split over tokens waits."""

    def __init__(self, vocab: Vocab):
        self._vocab = vocab
        self._utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.last_segment = ""

    def add_token(self, token: int) -> None:
        self.last_segment = self._utf8.decode(self._vocab.piece(token))

    def finalize(self) -> None:
        self.last_segment = self._utf8.decode(b"", final=True)
