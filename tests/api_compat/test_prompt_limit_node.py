"""The real node with the default model: a prompt at the largest size the API accepts completes or
gets a clear 400, one character more is refused at the API naming `messages`, and the same
runner process goes on serving."""

import httpx
import psutil

from skulk.config.model import ApiSettings
from tests.api_compat.helpers import M

LARGEST = ApiSettings().max_prompt_chars


def runner_pids(node) -> set[int]:
    kids = psutil.Process(node.proc.pid).children(recursive=True)
    return {p.pid for p in kids if "worker_main" in " ".join(p.cmdline())}


def post_chat(node, content: str, **extra) -> httpx.Response:
    body = {"model": M, "messages": [{"role": "user", "content": content}], "max_tokens": 8, **extra}
    return httpx.post(node.url + "/v1/chat/completions", json=body, timeout=180, trust_env=False)


def test_largest_accepted_prompt_then_a_normal_chat_on_the_same_runner(node):
    before = runner_pids(node)
    assert before
    over = post_chat(node, "a" * (LARGEST + 1))
    assert over.status_code == 400 and over.json()["error"]["param"] == "messages", over.text[:300]
    at_limit = post_chat(node, ("hello " * (LARGEST // 6 + 1))[:LARGEST])
    assert at_limit.status_code in (200, 400), at_limit.text[:300]
    if at_limit.status_code == 400:  # longer than this model's context: said so, for this request only
        err = at_limit.json()["error"]
        assert err["code"] == "context_length_exceeded" and err["message"], err
    normal = post_chat(node, "Name three colors.", temperature=0)
    assert normal.status_code == 200, normal.text[:300]
    assert normal.json()["choices"][0]["message"]["content"]
    assert runner_pids(node) == before and node.alive()
    runners = node.get("/state")["runners"]
    assert runners and all(next(iter(s)) in ("RunnerReady", "RunnerRunning") for s in runners.values())
