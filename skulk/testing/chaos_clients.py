"""Chaos load: K client threads sending chat requests (streaming or not) through random nodes.

Each request ends in one outcome: ok, retryable (the API said so, or the node it used was
down), other (explained by `detail`), or hung (no byte for HUNG_AFTER_S). Bounded in count
and time; threads stop when `stop` is set.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

HUNG_AFTER_S = 30.0  # no byte for this long: hung (keepalives count as bytes)
REQUEST_CAP_S = 180.0  # a request still going after this is hung too, bytes or not
RETRYABLE_STATUS = {429, 502, 503, 504}


@dataclass
class RequestRecord:
    node: str
    stream: bool
    start: float
    end: float = 0.0
    outcome: str = "pending"
    detail: str = ""
    first_byte: float | None = None


def _client() -> httpx.Client:
    timeout = httpx.Timeout(connect=5.0, read=HUNG_AFTER_S, write=10.0, pool=10.0)
    return httpx.Client(trust_env=False, timeout=timeout, limits=httpx.Limits(max_keepalive_connections=0))


def _body(model: str, rng: random.Random, stream: bool, max_tokens: int) -> dict:
    topic = rng.choice(["France", "rivers", "tea", "the moon", "prime numbers", "owls"])
    return {"model": model, "messages": [{"role": "user", "content": f"Say one short fact about {topic}."}],
            "max_tokens": max_tokens, "temperature": 0.7, "stream": stream}


def _error_outcome(doc: dict, status: int) -> tuple[str, str]:
    err = doc.get("error") if isinstance(doc, dict) else None
    err = err if isinstance(err, dict) else {}
    retryable = err.get("retryable") is True or status in RETRYABLE_STATUS
    return ("retryable" if retryable else "other"), f"{status} {err.get('code')}: {str(err.get('message'))[:160]}"


def _stream(client: httpx.Client, url: str, body: dict, rec: RequestRecord) -> None:
    with client.stream("POST", url, json=body) as resp:
        if resp.status_code != 200:
            resp.read()
            rec.outcome, rec.detail = _error_outcome(_json(resp.text), resp.status_code)
            return
        done = False
        for line in resp.iter_lines():
            rec.first_byte = rec.first_byte or time.monotonic()
            if time.monotonic() - rec.start > REQUEST_CAP_S:
                rec.outcome, rec.detail = "hung", f"still streaming after {REQUEST_CAP_S}s"
                return
            if line == "data: [DONE]":
                done = True
            elif line.startswith("data: ") and '"error"' in line:
                rec.outcome, rec.detail = _error_outcome(_json(line[6:]), 200)
                return
        rec.outcome, rec.detail = ("ok", "") if done else ("retryable", "stream ended without [DONE]")


def _plain(client: httpx.Client, url: str, body: dict, rec: RequestRecord) -> None:
    resp = client.post(url, json=body)
    rec.first_byte = time.monotonic()
    if resp.status_code == 200:
        rec.outcome = "ok"
    else:
        rec.outcome, rec.detail = _error_outcome(_json(resp.text), resp.status_code)


def _json(text: str) -> dict:
    try:
        doc = json.loads(text)
    except ValueError:
        return {"error": {"message": text[:160]}}
    return doc if isinstance(doc, dict) else {}


def one_request(client: httpx.Client, node_name: str, base_url: str, model: str, rng: random.Random,
                stream: bool, max_tokens: int = 16) -> RequestRecord:
    rec = RequestRecord(node_name, stream, time.monotonic())
    url = base_url + "/v1/chat/completions"
    try:
        (_stream if stream else _plain)(client, url, _body(model, rng, stream, max_tokens), rec)
    except httpx.ReadTimeout:
        rec.outcome, rec.detail = "hung", f"no byte for {HUNG_AFTER_S}s"
    except (httpx.ConnectError, httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError,
            httpx.ConnectTimeout, httpx.PoolTimeout) as e:
        rec.outcome, rec.detail = "retryable", f"node {node_name} connection: {type(e).__name__}"
    except Exception as e:  # noqa: BLE001 - recorded and explained, never fatal to the battery
        rec.outcome, rec.detail = "other", f"{type(e).__name__}: {e}"[:200]
    rec.end = time.monotonic()
    return rec


@dataclass
class ClientPool:
    """K threads; `targets()` gives the (name, url) pairs a client may pick from right now."""

    targets: Callable[[], list[tuple[str, str]]]
    model: str
    clients: int
    seed: int
    max_requests: int = 10_000
    records: list[RequestRecord] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> None:
        for i in range(self.clients):
            t = threading.Thread(target=self._loop, args=(random.Random(self.seed * 1000 + i),), daemon=True)
            t.start()
            self._threads.append(t)

    def _loop(self, rng: random.Random) -> None:
        client = _client()
        try:
            while not self.stop.is_set() and len(self.records) < self.max_requests:
                targets = self.targets()
                if not targets:
                    self.stop.wait(0.5)  # nothing up to send to: wait for the controller
                    continue
                name, url = rng.choice(targets)
                rec = one_request(client, name, url, self.model, rng, stream=rng.random() < 0.6)
                with self._lock:
                    self.records.append(rec)
        finally:
            client.close()

    def finish(self, timeout: float = REQUEST_CAP_S + 10) -> None:
        self.stop.set()
        deadline = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))



def slow_client(base_url: str, model: str, hold_s: float) -> str:
    """Open a long stream, read one line, then stop reading for `hold_s` before closing."""
    body = {"model": model, "messages": [{"role": "user", "content": "Tell me a very long story."}],
            "max_tokens": 300, "stream": True}
    with _client() as client, client.stream("POST", base_url + "/v1/chat/completions", json=body) as resp:
        lines = resp.iter_lines()
        first = next(lines, "")
        time.sleep(hold_s)  # the fault itself: a reader that stops reading
    return f"status {resp.status_code}, first line {first[:40]!r}"
