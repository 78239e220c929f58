"""Helpers for tests that serve real models through a loopback cluster."""

import json
import time
from typing import Any

import httpx

from skulk.testing.cluster import NodeProcess, wait_until


def runner_status_names(state: dict, instance: dict) -> list[str]:
    runners = instance["shardAssignments"]["runnerToShard"]
    return [next(iter(state["runners"][r])) if r in state["runners"] else "missing" for r in runners]


def unwrap(tagged: dict) -> tuple[str, dict]:
    (tag, body), = tagged.items()
    return tag, body


def ready_instance(node: NodeProcess, model_id: str, timeout: float = 120.0, instance_id: str | None = None) -> dict:
    """Wait until an instance of the model has every runner ready; return its body."""
    def check():
        state = node.get("/state")
        for iid, tagged in state["instances"].items():
            _, inst = unwrap(tagged)
            if inst["shardAssignments"]["modelId"] != model_id or (instance_id and iid != instance_id):
                continue
            if all(s in ("RunnerReady", "RunnerRunning") for s in runner_status_names(state, inst)):
                return inst
            if any(s == "RunnerFailed" for s in runner_status_names(state, inst)):
                failed = [state["runners"][r] for r in inst["shardAssignments"]["runnerToShard"] if r in state["runners"]]
                raise AssertionError(f"runner failed: {failed}")
        return None
    return wait_until(check, timeout, interval=0.2, message=f"{model_id} ready on {node.name}")


def chat(node: NodeProcess, model_id: str, content: str, *, max_tokens: int = 24, timeout: float = 120.0,
         **extra: Any) -> dict:
    body = {"model": model_id, "messages": [{"role": "user", "content": content}], "temperature": 0,
            "max_tokens": max_tokens, **extra}
    resp = httpx.post(node.url + "/v1/chat/completions", json=body, timeout=timeout, trust_env=False)
    assert resp.status_code == 200, resp.text
    return resp.json()


def chat_stream(node: NodeProcess, model_id: str, content: str, *, max_tokens: int = 24,
                timeout: float = 120.0) -> tuple[str, list[str]]:
    """Streamed text and the raw SSE lines."""
    body = {"model": model_id, "messages": [{"role": "user", "content": content}], "temperature": 0,
            "max_tokens": max_tokens, "stream": True}
    text, lines = [], []
    with httpx.stream("POST", node.url + "/v1/chat/completions", json=body, timeout=timeout, trust_env=False) as r:
        for line in r.iter_lines():
            if not line:
                continue  # event separators
            lines.append(line)
            if line.startswith("data: ") and line != "data: [DONE]":
                payload = json.loads(line[6:])
                if "error" in payload:
                    raise AssertionError(payload["error"])
                for choice in payload.get("choices", []):
                    text.append(choice["delta"].get("content") or "")
    return "".join(text), lines


def elapsed(since: float) -> float:
    return time.monotonic() - since
