"""Request admission knobs shared by the MLX and llama.cpp engines: the concurrency cap and the
scripted-replies test hook. Stdlib only, so either engine can import it without the other."""

import json
import os

from skulk.types.tasks import TextGenerationTaskParams

MAX_CONCURRENT_ENV = "SKULK_MAX_CONCURRENT_REQUESTS"
# TEST HOOK (off unless set): JSON {"trigger": "reply"}. A request whose last message is a user
# message containing a trigger gets that reply token by token instead of sampled tokens.
SCRIPTED_REPLIES_ENV = "SKULK_TEST_SCRIPTED_REPLIES"
DEFAULT_MAX_CONCURRENT = 8
# TEST HOOK (off unless set): seconds a runner waits before loading its model, so a test can
# rely on an instance still loading rather than race its load.
LOAD_DELAY_ENV = "SKULK_TEST_LOAD_DELAY_SECONDS"


def load_delay_s() -> float:
    """Test hook: LOAD_DELAY_ENV's seconds (0 when unset or not a number), capped at a minute."""
    try:
        return min(max(float(os.environ.get(LOAD_DELAY_ENV, "") or 0), 0.0), 60.0)
    except ValueError:
        return 0.0


def scripted_reply(params: TextGenerationTaskParams) -> str | None:
    """Test hook: the scripted reply for this request, if SCRIPTED_REPLIES_ENV is set and matches."""
    raw = os.environ.get(SCRIPTED_REPLIES_ENV)
    if not raw or not params.input or params.input[-1].role != "user":
        return None
    return next((reply for trigger, reply in json.loads(raw).items() if trigger in params.input[-1].content), None)


def max_concurrent_from_env() -> int:
    value = os.environ.get(MAX_CONCURRENT_ENV, "")
    return max(1, int(value)) if value.strip() else DEFAULT_MAX_CONCURRENT
