"""A burst of concurrent clients on one instance with a small pending limit (bench_serving.py --burst N
runs it): does every request get its answer or a 429 at once, and do the served ones keep the rate?

First 8 streamed greedy chats run together (the 8-stream aggregate, the baseline), then N at once.
Per request it records the seconds to the response status ("decided": 200 headers or the 429), to
the first token, and its tokens. The node runs with inference.max_pending_per_instance and
max_concurrent_requests at 8 (set by bench_serving.py); everything is on 127.0.0.1 and bounded.
"""

import asyncio
import json
import time
from typing import Any

import httpx

DECIDE_TARGET_S = 1.0
CLIENT_TIMEOUT_S = 300.0


async def _one(client: httpx.AsyncClient, url: str, model: str, i: int, max_tokens: int) -> dict[str, Any]:
    body = {"model": model, "messages": [{"role": "user", "content": f"Write a story about the number {i}."}],
            "temperature": 0, "max_tokens": max_tokens, "stream": True}
    start = time.perf_counter()
    out: dict[str, Any] = {"status": None, "decided_s": None, "ttft_s": None, "tokens": 0, "end_s": None}
    try:
        async with client.stream("POST", url + "/v1/chat/completions", json=body) as resp:
            out["status"], out["decided_s"] = resp.status_code, time.perf_counter() - start
            if resp.status_code == 200:
                async for line in resp.aiter_lines():
                    if not line.startswith("data: ") or line == "data: [DONE]":
                        continue
                    choices = json.loads(line[6:]).get("choices") or [{}]
                    if (choices[0].get("delta") or {}).get("content"):
                        out["tokens"] += 1
                        out["ttft_s"] = out["ttft_s"] or time.perf_counter() - start
            else:
                out["retry_after"] = resp.headers.get("Retry-After")
                await resp.aread()
    except httpx.HTTPError as exc:
        out["error"] = f"{type(exc).__name__}: {exc}"[:200]
    out["end_s"] = time.perf_counter() - start
    return out


async def _wave(url: str, model: str, n: int, max_tokens: int) -> tuple[list[dict[str, Any]], float]:
    limits = httpx.Limits(max_connections=n + 4, max_keepalive_connections=n + 4)
    async with httpx.AsyncClient(timeout=CLIENT_TIMEOUT_S, limits=limits, trust_env=False) as client:
        start = time.perf_counter()
        runs = await asyncio.gather(*(_one(client, url, model, i, max_tokens) for i in range(n)))
        return list(runs), time.perf_counter() - start


def _aggregate(runs: list[dict[str, Any]]) -> float:
    served = [r for r in runs if r["status"] == 200 and r["tokens"]]
    if not served:
        return 0.0
    return sum(r["tokens"] for r in served) / max(r["end_s"] for r in served)


def bench_burst(url: str, model: str, clients: int, max_tokens: int) -> dict[str, Any]:
    base, _ = asyncio.run(_wave(url, model, 8, max_tokens))
    runs, wall = asyncio.run(_wave(url, model, clients, max_tokens))
    decided = sorted(r["decided_s"] for r in runs if r["decided_s"] is not None)
    statuses: dict[str, int] = {}
    for r in runs:
        statuses[str(r["status"])] = statuses.get(str(r["status"]), 0) + 1
    late = [r for r in runs if r["decided_s"] is None or r["decided_s"] > DECIDE_TARGET_S]
    base_rate, burst_rate = _aggregate(base), _aggregate(runs)
    return {"bench": "burst", "model": model, "clients": clients, "max_tokens": max_tokens, "statuses": statuses,
            "served": statuses.get("200", 0), "rejected_429": statuses.get("429", 0),
            "without_retry_after": sum(1 for r in runs if r["status"] == 429 and not r.get("retry_after")),
            "errors": [r["error"] for r in runs if "error" in r][:5],
            "decided_max_s": round(decided[-1], 3) if decided else None,
            "decided_p50_s": round(decided[len(decided) // 2], 3) if decided else None,
            "decided_late": len(late), "wall_s": round(wall, 2),
            "aggregate_tps_8_streams": round(base_rate, 2), "aggregate_tps_burst_served": round(burst_rate, 2),
            "ratio_burst_vs_8_streams": round(burst_rate / base_rate, 3) if base_rate else None,
            "ok": not late and statuses.get("200", 0) > 0 and set(statuses) <= {"200", "429"}}
