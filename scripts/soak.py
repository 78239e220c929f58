#!/usr/bin/env python3
"""Soak: steady mixed traffic against a 3-node loopback cluster for `--minutes`.

One JSON line per interval (tok/s, p50/p99 TTFT, errors, RSS and fds per node, event-log
bytes per node), then a summary with each one's growth from the first interval after warm-up
to the last. Clients are bounded threads; every node is stopped by PID in a `finally`.
"""

import argparse
import signal
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from skulk.testing.chaos import ENV, MODEL, process_usage, start_serving_cluster  # noqa: E402
from skulk.testing.cluster import LocalCluster  # noqa: E402


class Traffic:
    def __init__(self, nodes, model: str, clients: int, deadline: float) -> None:
        self.nodes, self.model, self.deadline = nodes, model, deadline
        self.lock = threading.Lock()
        self.tokens, self.ttft, self.errors = 0, [], []
        self.threads = [threading.Thread(target=self._loop, args=(i,), daemon=True) for i in range(clients)]

    def take(self) -> tuple[int, list[float], list[str]]:
        with self.lock:
            out = (self.tokens, self.ttft, self.errors)
            self.tokens, self.ttft, self.errors = 0, [], []
        return out

    def _loop(self, i: int) -> None:
        client = httpx.Client(trust_env=False, timeout=httpx.Timeout(60.0, connect=5.0))
        n = 0
        try:
            while time.monotonic() < self.deadline:
                node = self.nodes[(i + n) % len(self.nodes)]
                self._one(client, node.url, stream=n % 3 != 2, n=n)
                n += 1
        finally:
            client.close()

    def _one(self, client: httpx.Client, url: str, stream: bool, n: int) -> None:
        body = {"model": self.model, "messages": [{"role": "user", "content": f"Count from {n % 50} upwards."}],
                "max_tokens": 32, "temperature": 0.5, "stream": stream}
        t0 = time.monotonic()
        try:
            if not stream:
                r = client.post(url + "/v1/chat/completions", json=body)
                r.raise_for_status()
                with self.lock:
                    self.tokens += r.json()["usage"]["completion_tokens"]
                return
            first, count = None, 0
            with client.stream("POST", url + "/v1/chat/completions", json=body) as r:
                r.raise_for_status()
                for line in r.iter_lines():
                    if line.startswith("data: {") and '"content"' in line:
                        first = first or time.monotonic()
                        count += 1  # one streamed chunk carries one token unless coalesced
            with self.lock:
                self.tokens += count
                if first is not None:
                    self.ttft.append(first - t0)
        except Exception as e:  # noqa: BLE001 - counted per interval, explained in the output
            with self.lock:
                self.errors.append(f"{type(e).__name__}: {e}"[:160])


def dir_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.exists() else 0


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    return round(statistics.quantiles(values, n=100)[q - 1], 3) if len(values) > 1 else round(values[0], 3)


def growth(first: dict, last: dict) -> dict:
    def rel(a, b):
        return None if not a else round((b - a) / a * 100, 1)
    out = {"tok_s_pct": rel(first["tok_s"], last["tok_s"])}
    for name in first["nodes"]:
        f, l = first["nodes"][name], last["nodes"][name]
        out[name] = {"rss_pct": rel(f["rss_mb"], l["rss_mb"]), "fds_pct": rel(f["fds"], l["fds"]),
                     "event_log_bytes_delta": l["event_log_bytes"] - f["event_log_bytes"]}
    return out


def _interrupt(signum, frame):
    raise KeyboardInterrupt  # SIGTERM (e.g. from `timeout`) runs the finally that stops every node


def main() -> int:
    signal.signal(signal.SIGTERM, _interrupt)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--interval", type=float, default=30.0)
    parser.add_argument("--clients", type=int, default=3)
    parser.add_argument("--warmup-intervals", type=int, default=1)
    args = parser.parse_args()
    lines = []
    with tempfile.TemporaryDirectory(prefix="skulk-soak-") as tmp:
        models = Path(tmp) / "models"
        models.mkdir()
        cluster = LocalCluster(Path(tmp), extra_env={**ENV, "SKULK_MODELS_DIR": str(models)})
        try:
            nodes = start_serving_cluster(cluster, 3, MODEL)
            traffic = Traffic(nodes, MODEL, args.clients, time.monotonic() + args.minutes * 60)
            for t in traffic.threads:
                t.start()
            start = time.monotonic()
            while time.monotonic() < traffic.deadline:
                t_begin = time.monotonic()
                time.sleep(min(args.interval, max(0.0, traffic.deadline - time.monotonic())))  # the interval
                tokens, ttft, errors = traffic.take()
                took = max(time.monotonic() - t_begin, 1e-3)
                usage = process_usage(nodes)
                for n in nodes:
                    usage[n.name]["event_log_bytes"] = dir_bytes(n.home / "event_log")
                line = {"t_s": round(time.monotonic() - start, 1), "tok_s": round(tokens / took, 2),
                        "ttft_p50_s": pct(ttft, 50), "ttft_p99_s": pct(ttft, 99), "errors": len(errors),
                        "error_details": sorted(set(errors))[:5], "nodes": usage}
                lines.append(line)
                print(json.dumps(line), flush=True)
            for t in traffic.threads:
                t.join(90)
        finally:
            cluster.stop_all()
    steady = lines[args.warmup_intervals:] or lines
    if steady:
        print(json.dumps({"summary": True, "minutes": args.minutes, "intervals": len(lines),
                          "errors": sum(x["errors"] for x in lines),
                          "growth_after_warmup": growth(steady[0], steady[-1])}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
