#!/usr/bin/env python3
"""Serving benchmarks on one 2-node loopback cluster; prints one JSON object per line ("bench").

    .venv/bin/python scripts/bench_serving.py [--models-dir DIR] [--rounds 3] [--max-tokens 32]

api_vs_engine    TTFT and decode tok/s of a streamed greedy chat through the API of the node
                 holding a 1-rank instance ("api_local") and through the other node's API
                 ("api_remote") vs skulk's Engine in this process: same model, same prompt, rounds
                 alternated in this run; ratios are API / engine.
rank_loss        a 2-node pipeline streaming a long answer; seconds from SIGKILL of the node that is
                 not the API node to the client reading the error event.
master_failover  the killed node restarted, an instance placed off the master (excluded_nodes);
                 seconds from SIGKILL of the master to the first chat that succeeds on the survivor.
lean_path        (--lean N, alone) replicated events per chat request and master CPU s per 100.
burst            (--burst N, alone) N concurrent streams on one instance with a pending limit of 8:
                 seconds to each answer or 429, and the served streams' rate vs 8 streams.
Nodes run with auto-place off and SKULK_MODELS_DIR at a pre-converted models dir; all traffic is on
127.0.0.1. Every node and runner process is killed by PID on the way out.
"""

import argparse
import json
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import psutil

SCRIPTS = Path(__file__).resolve().parent
sys.path.insert(0, str(SCRIPTS.parent))
sys.path.insert(0, str(SCRIPTS))

from bench_engine import (  # noqa: E402
    alternate,
    emit,
    environment_record,
    guarded,
    med,
    ratio,
    rnd,
    story_prompt,
    timing,
    with_blas_preload,
)

from skulk.models import DEFAULT_MODEL_ID, ensure_model_dir  # noqa: E402
from skulk.testing.cluster import LocalCluster, NodeProcess, wait_until  # noqa: E402
from skulk.testing.serving import ready_instance, unwrap  # noqa: E402

MODEL = DEFAULT_MODEL_ID
LOAD_TIMEOUT_S = 300.0  # placement to every runner ready
REQUEST_TIMEOUT_S = 300.0  # one streamed request, first byte to [DONE]
KILL_WAIT_S = 60.0  # SIGKILL to the error event
FAILOVER_WAIT_S = 180.0  # SIGKILL of the master to a chat answering again
_SEEN: dict[int, psutil.Process] = {}  # every process under our nodes, for the final cleanup


# ----- cluster -----

def track(cluster: LocalCluster) -> None:
    """Remember every live process under our nodes (runners live in their own sessions)."""
    for node in cluster.nodes:
        if node.alive():
            try:
                root = psutil.Process(node.proc.pid)
                for p in [root, *root.children(recursive=True)]:
                    _SEEN.setdefault(p.pid, p)
            except psutil.NoSuchProcess:
                pass


def reap_tracked() -> None:
    """SIGKILL, by PID, whatever we started that is still running (is_running checks PID reuse)."""
    for p in _SEEN.values():
        try:
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                p.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(list(_SEEN.values()), timeout=10)


def connected(nodes: list[NodeProcess]) -> bool:
    state = nodes[0].get("/state")
    edges = sum(len(s) for s in state["topology"]["connections"].values())
    return (len(state["topology"]["nodes"]) == len(nodes) and edges >= len(nodes) * (len(nodes) - 1)
            and all(len(n.get("/state")["nodeMemory"]) == len(nodes) for n in nodes))


def start_nodes(cluster: LocalCluster, n: int) -> tuple[list[NodeProcess], dict[str, NodeProcess]]:
    nodes = [cluster.add_node(f"n{i}") for i in range(n)]
    for node in nodes:
        cluster.wait_ready(node, timeout=60)
    wait_until(lambda: connected(nodes), 60, interval=0.2, message="topology complete")
    track(cluster)
    return nodes, {node.get("/node_id"): node for node in nodes}


def place(node: NodeProcess, **body: Any) -> None:
    resp = node.post("/place_instance", {"model_id": MODEL, **body}, timeout=30)
    if resp.status_code != 200:
        raise RuntimeError(f"placement {body} refused: {resp.status_code} {resp.text[:500]}")


def delete_instances(node: NodeProcess) -> None:
    for iid in node.get("/state")["instances"]:
        node.delete(f"/instance/{iid}")
    wait_until(lambda: not node.get("/state")["instances"], 60, interval=0.2, message="instances deleted")


def rank_of(inst: dict[str, Any], node_id: str) -> int:
    runner = inst["shardAssignments"]["nodeToRunner"][node_id]
    _, shard = unwrap(inst["shardAssignments"]["runnerToShard"][runner])
    return int(shard["deviceRank"])


# ----- one request, measured -----

def chat_body(text: str, max_tokens: int, stream: bool) -> dict[str, Any]:
    body = {"model": MODEL, "messages": [{"role": "user", "content": text}], "temperature": 0,
            "max_tokens": max_tokens, "stream": stream}
    if stream:
        body["stream_options"] = {"include_usage": True}
    return body


def sse_payloads(response: httpx.Response, deadline: float) -> Any:
    """The JSON payloads of a chat stream, until [DONE] or the deadline (time.monotonic)."""
    for line in response.iter_lines():
        if time.monotonic() > deadline:
            raise TimeoutError("stream ran past its deadline")
        if line.startswith("data: {"):
            yield json.loads(line[6:])


def api_once(node: NodeProcess, text: str, max_tokens: int) -> dict[str, Any]:
    """TTFT to the first delta (empty text counts: a token whose bytes are incomplete)."""
    t0 = time.perf_counter()
    first = end = None
    pieces, usage = [], None
    with httpx.stream("POST", node.url + "/v1/chat/completions", json=chat_body(text, max_tokens, True),
                      timeout=REQUEST_TIMEOUT_S, trust_env=False) as r:
        for payload in sse_payloads(r, time.monotonic() + REQUEST_TIMEOUT_S):
            if "error" in payload:
                raise RuntimeError(f"stream error: {payload['error']}")
            usage = payload.get("usage") or usage
            for choice in payload.get("choices", []):
                first = first or time.perf_counter()
                pieces.append(choice["delta"].get("content") or "")
                end = time.perf_counter() if choice.get("finish_reason") else end
    if first is None or end is None or usage is None:
        raise RuntimeError(f"incomplete stream from {node.name} (status {r.status_code})")
    out = timing(t0, first, end, usage["prompt_tokens"], usage["completion_tokens"])
    return {**out, "text": "".join(pieces)}


def engine_once(engine: Any, text: str, max_tokens: int, rid: str) -> dict[str, Any]:
    from skulk.types.tasks import ChatMessage, TextGenerationTaskParams

    params = TextGenerationTaskParams(model=MODEL, input=[ChatMessage(role="user", content=text)],
                                      max_output_tokens=max_tokens, temperature=0.0)
    t0 = time.perf_counter()
    first, pieces, last = None, [], None
    for last in engine.stream(rid, params):
        first = first or time.perf_counter()
        pieces.append(last.text)
    out = timing(t0, first, time.perf_counter(), last.usage.prompt_tokens, last.usage.completion_tokens)
    return {**out, "text": "".join(pieces)}


def summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    return {"ttft_s": rnd(med([r["ttft_s"] for r in runs])), "decode_tps": rnd(med([r["decode_tps"] for r in runs])),
            "completion_tokens": runs[0]["completion_tokens"] if runs else None}


# ----- benches -----

def api_and_engine_runs(api: NodeProcess, other: NodeProcess, model_dir: Path, args: argparse.Namespace,
                        deadline: float) -> dict[str, list[dict[str, Any]]]:
    from skulk.engine.generate import Engine
    from skulk.engine.loading import load_shard

    engine = Engine(load_shard(model_dir))
    engine.warmup()
    text, n = story_prompt(0), args.max_tokens
    sides = {"api_local": lambda i: api_once(api, text, n), "api_remote": lambda i: api_once(other, text, n),
             "engine": lambda i: engine_once(engine, text, n, f"e{i}")}
    return alternate(sides, args.rounds, deadline)


def bench_api_vs_engine(cluster: LocalCluster, api: NodeProcess, other: NodeProcess, other_id: str,
                        model_dir: Path, args: argparse.Namespace, deadline: float) -> dict[str, Any]:
    import mlx.core as mx

    place(api, min_nodes=1, excluded_nodes=[other_id])  # the instance lives on the API node
    ready_instance(api, MODEL, timeout=LOAD_TIMEOUT_S)
    track(cluster)
    runs = api_and_engine_runs(api, other, model_dir, args, deadline)
    mx.clear_cache()  # the in-process engine is gone; give its buffers back
    delete_instances(api)
    s = {k: summary(v) for k, v in runs.items()}
    return {"bench": "api_vs_engine", "model": MODEL, "prompt": story_prompt(0), "max_tokens": args.max_tokens,
            "prompt_tokens": runs["engine"][0]["prompt_tokens"], "rounds": len(runs["engine"]), **s,
            **{f"ratio_{m}_{where}": ratio(s[f"api_{where}"][k], s["engine"][k])
               for where in ("local", "remote") for m, k in (("ttft", "ttft_s"), ("decode", "decode_tps"))},
            "same_text": runs["api_local"][0]["text"] == runs["engine"][0]["text"]}


def stream_until_killed(api: NodeProcess, victim: NodeProcess) -> dict[str, Any]:
    """Stream a long answer, SIGKILL the victim's node after a few tokens, time the error event."""
    body = chat_body("Write a very long story about a fox and a river.", 2000, True)
    with httpx.stream("POST", api.url + "/v1/chat/completions", json=body, timeout=KILL_WAIT_S,
                      trust_env=False) as r:
        payloads = sse_payloads(r, time.monotonic() + REQUEST_TIMEOUT_S)
        tokens = 0
        for p in payloads:
            if "error" in p:
                raise RuntimeError(f"stream failed before the kill: {p['error']}")
            tokens += bool(p.get("choices"))
            if tokens >= 3:
                break
        killed = time.monotonic()
        victim.kill(signal.SIGKILL)
        try:
            for p in payloads:
                if "error" in p:
                    return {"error_after_s": rnd(time.monotonic() - killed), "tokens_before_kill": tokens,
                            "retryable": p["error"].get("retryable"), "error": str(p["error"].get("message"))[:300]}
                if time.monotonic() - killed > KILL_WAIT_S:
                    break
        except httpx.HTTPError as exc:
            after = time.monotonic() - killed
            return {"error_after_s": None, "transport_error": f"{type(exc).__name__} after {after:.2f} s"}
    return {"error_after_s": None, "stream_ended_after_s": rnd(time.monotonic() - killed)}


def bench_rank_loss(cluster: LocalCluster, api: NodeProcess, other: NodeProcess,
                    ids: dict[str, NodeProcess]) -> dict[str, Any]:
    api_id, other_id = (next(i for i, n in ids.items() if n is node) for node in (api, other))
    place(api, min_nodes=2)
    inst = ready_instance(api, MODEL, timeout=LOAD_TIMEOUT_S)
    if set(inst["shardAssignments"]["nodeToRunner"]) != {api_id, other_id}:
        raise RuntimeError(f"expected a 2-node pipeline, got {inst['shardAssignments']['nodeToRunner']}")
    track(cluster)
    api_once(api, story_prompt(1), 4)  # the ring serves before we break it
    result = stream_until_killed(api, other)
    return {"bench": "rank_loss", "model": MODEL, "api_rank": rank_of(inst, api_id),
            "killed_rank": rank_of(inst, other_id), **result}


def try_chat(node: NodeProcess) -> tuple[bool, str]:
    try:
        r = node.post("/v1/chat/completions", chat_body(story_prompt(2), 4, False), timeout=30)
    except httpx.HTTPError as exc:
        return False, type(exc).__name__
    return r.status_code == 200, "" if r.status_code == 200 else f"{r.status_code}: {r.text[:200]}"


def wait_for_chat(node: NodeProcess, old_master: str, killed: float) -> dict[str, Any]:
    """Poll until a chat succeeds on node; also note when it first names a new master."""
    new_master_s, errors, attempts, ok = None, [], 0, False
    while time.monotonic() - killed < FAILOVER_WAIT_S and attempts < 2000:
        attempts += 1
        if new_master_s is None:
            try:
                if node.get("/state").get("masterNodeId") not in (None, old_master):
                    new_master_s = rnd(time.monotonic() - killed)
            except httpx.HTTPError:
                pass
        ok, msg = try_chat(node)
        if ok:
            break
        if msg not in errors:
            errors.append(msg)
        time.sleep(0.1)  # poll interval between chat attempts
    done = rnd(time.monotonic() - killed) if ok else None
    return {"chat_ok_after_s": done, "new_master_after_s": new_master_s, "attempts": attempts,
            "errors_seen": errors[:5]}


def bench_master_failover(cluster: LocalCluster, nodes: list[NodeProcess]) -> dict[str, Any]:
    for node in nodes:
        if not node.alive():  # the node rank_loss killed comes back with its own home and ports
            node.start()
            cluster.wait_ready(node, timeout=60)
    wait_until(lambda: connected(nodes), 90, interval=0.2, message="topology complete again")
    track(cluster)
    ids = {n.get("/node_id"): n for n in nodes}
    master_id = nodes[0].get("/state")["masterNodeId"]
    master = ids[master_id]
    survivor = next(n for n in nodes if n is not master)
    delete_instances(survivor)
    place(survivor, min_nodes=1, excluded_nodes=[master_id])
    inst = ready_instance(survivor, MODEL, timeout=LOAD_TIMEOUT_S)
    api_once(survivor, story_prompt(2), 4)  # serving before the kill
    track(cluster)
    killed = time.monotonic()
    master.kill(signal.SIGKILL)
    result = wait_for_chat(survivor, master_id, killed)
    same = inst["instanceId"] in survivor.get("/state")["instances"]
    return {"bench": "master_failover", "model": MODEL, **result, "same_instance": same}


# ----- main -----

def run_all(cluster: LocalCluster, model_dir: Path, args: argparse.Namespace, deadline: float) -> bool:
    nodes, ids = start_nodes(cluster, 2)
    api, other = nodes
    other_id = next(i for i, n in ids.items() if n is other)
    ok = guarded("api_vs_engine", bench_api_vs_engine, cluster, api, other, other_id, model_dir, args, deadline)
    if api.get("/state")["instances"]:  # left over when api_vs_engine failed half way
        delete_instances(api)
    ok = guarded("rank_loss", bench_rank_loss, cluster, api, other, ids) and ok
    return guarded("master_failover", bench_master_failover, cluster, nodes) and ok


def run_lean(cluster: LocalCluster, args: argparse.Namespace) -> bool:
    """Replicated events per chat request and the master's CPU per 100 requests."""
    from bench_lean import bench_lean

    nodes, ids = start_nodes(cluster, 2)
    api, other = nodes
    api_id = next(i for i, n in ids.items() if n is api)
    place(api, min_nodes=1, excluded_nodes=[api_id])  # the instance on the other node
    ready_instance(api, MODEL, timeout=LOAD_TIMEOUT_S)
    master = ids[api.get("/state")["masterNodeId"]]
    return guarded("lean_path", bench_lean, api, master, MODEL, args.lean, args.max_tokens)


def run_burst(cluster: LocalCluster, args: argparse.Namespace) -> bool:
    """N concurrent clients at once on one node's instance (bench_burst.py)."""
    from bench_burst import bench_burst

    nodes, _ = start_nodes(cluster, 1)
    place(nodes[0], min_nodes=1)
    ready_instance(nodes[0], MODEL, timeout=LOAD_TIMEOUT_S)
    return guarded("burst", bench_burst, nodes[0].url, MODEL, args.burst, args.max_tokens)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models-dir", help="models dir with the default model converted (default: a temp dir)")
    p.add_argument("--rounds", type=int, default=3, help="timed rounds per side")
    p.add_argument("--max-tokens", type=int, default=32, help="tokens per timed request")
    p.add_argument("--budget-s", type=float, default=1200.0, help="after this, remaining rounds are skipped")
    p.add_argument("--lean", type=int, default=0, metavar="N",
                   help="only the lean_path bench: N chats through the node without the instance (bench_lean.py)")
    p.add_argument("--burst", type=int, default=0, metavar="N",
                   help="only the burst bench: N concurrent streams, pending limit 8 (bench_burst.py)")
    args = p.parse_args(argv)
    with_blas_preload()
    deadline = time.monotonic() + args.budget_s
    emit(environment_record())
    with tempfile.TemporaryDirectory(prefix="skulk-bench-serving-") as tmp:
        models_dir = Path(args.models_dir) if args.models_dir else Path(tmp) / "models"
        model_dir = ensure_model_dir(MODEL, models_dir, offline=True)
        env = {"SKULK_MODELS_DIR": str(models_dir), "SKULK_DEFAULT_MODEL__AUTO_PLACE": "false",
               "SKULK_SETTLE_GRACE_SECONDS": "5"}
        if args.burst:
            env.update({"SKULK_INFERENCE__MAX_PENDING_PER_INSTANCE": "8", "SKULK_INFERENCE__MAX_CONCURRENT_REQUESTS": "8"})
        cluster = LocalCluster(Path(tmp) / "cluster", extra_env=env)
        try:
            if args.burst:
                ok = run_burst(cluster, args)
            else:
                ok = run_lean(cluster, args) if args.lean else run_all(cluster, model_dir, args, deadline)
        finally:
            track(cluster)
            cluster.stop_all()
            reap_tracked()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
