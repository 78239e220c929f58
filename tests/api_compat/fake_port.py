"""An in-process ClusterPort whose one instance "generates" a scripted reply, so the request
translation and the three wire formats can be checked in milliseconds, without a model."""

from collections.abc import Callable
from typing import Any

from skulk.models import DEFAULT_MODEL_ID
from skulk.testing.fake_port import FAKE_NODE_ID as NODE
from skulk.testing.fake_port import FakePort, with_ready_runners
from skulk.types import commands as cmd
from skulk.types.chunks import ErrorChunk, TokenChunk, Usage
from skulk.types.state import State
from tests.factories import ring_instance


def reply(text: str, *, finish: str = "stop", prompt_tokens: int = 7, stop_sequence: str | None = None) -> list:
    """The reply a character per token, then the final chunk with usage."""
    chunks = [TokenChunk(text=c, usage=Usage(prompt_tokens=prompt_tokens, completion_tokens=i + 1))
              for i, c in enumerate(text)]
    return chunks + [TokenChunk(text="", finish_reason=finish, stop_sequence=stop_sequence,
                                usage=Usage(prompt_tokens=prompt_tokens, completion_tokens=len(text) + 1))]


def too_long(_: Any) -> list:
    return [ErrorChunk(error_type="context_length_exceeded", error_message="prompt too long", status_code=400)]


class ScriptedPort(FakePort):
    def __init__(self, answer: Callable[[Any], list] = lambda p: reply("Hello!"), context_limit: int | None = None):
        super().__init__(is_master=True, script={cmd.GenerateText: lambda c: answer(c.task_params)})
        inst = ring_instance("i0", [NODE], self.catalog.require(DEFAULT_MODEL_ID))
        self.state = with_ready_runners(State(instances={"i0": inst.model_copy(update={"context_token_limit": context_limit})}))

    @property
    def params(self):
        """The task params of the last generation request."""
        return self.sent_of(cmd.GenerateText)[-1].task_params
