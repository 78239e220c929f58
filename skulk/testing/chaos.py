"""A chaos battery on a real loopback cluster: faults under load, then nothing lost or diverged.

Faults: SIGKILL of the master, SIGKILL of an instance's node mid-stream, SIGSTOP/SIGCONT of a
node, a restart with the same home, a slow client. (A partition needs firewall rules on the
shared host; it is left out, see docs/benchmarks.md.) Every killed node is restarted with its
home so the cluster keeps its size; every process is stopped by PID by the caller's
LocalCluster. Used by scripts/chaos.py and tests/scripts/test_chaos_short.py.
"""

from __future__ import annotations

import json
import os
import random
import signal
import threading
import time
from dataclasses import dataclass, field

import psutil

from skulk.testing.chaos_clients import ClientPool, slow_client
from skulk.testing.cluster import LocalCluster, NodeProcess, wait_until
from skulk.testing.serving import unwrap

MODEL = "HuggingFaceTB/SmolLM2-135M-Instruct"
FAULT_KINDS = ("kill_master", "kill_worker_midstream", "stop_cont", "restart_same_home", "slow_client")
LIVE_KEYS = ("nodeIdentities", "nodeMemory", "nodeSystem", "nodeDisk", "nodeHealth")
ENV = {"SKULK_SETTLE_GRACE_SECONDS": "5"}


def process_usage(nodes: list[NodeProcess]) -> dict[str, dict]:
    out = {}
    for n in nodes:
        try:
            p = psutil.Process(n.proc.pid)
            out[n.name] = {"rss_mb": round(p.memory_info().rss / 2**20, 1), "fds": p.num_fds()}
        except (psutil.Error, AttributeError):
            out[n.name] = {"rss_mb": None, "fds": None}
    return out


def replicated(doc: dict) -> dict:
    return {k: v for k, v in doc.items() if k not in LIVE_KEYS}


def divergence(nodes: list[NodeProcess]) -> list[dict]:
    """Nodes whose replicated /state differs from the master's (empty: converged)."""
    docs = {n.name: n.get("/state", timeout=10) for n in nodes}
    masters = {d.get("masterNodeId") for d in docs.values()}
    ids = {n.name: n.get("/node_id") for n in nodes}
    master = next((name for name, nid in ids.items() if nid in masters), None)
    if len(masters) != 1 or master is None:
        return [{"node": name, "masterNodeId": d.get("masterNodeId")} for name, d in docs.items()]
    ref = replicated(docs[master])
    out = []
    for name, doc in docs.items():
        mine = replicated(doc)
        if mine != ref:
            keys = sorted(k for k in set(ref) | set(mine) if ref.get(k) != mine.get(k))
            out.append({"node": name, "differs": keys, "idx": doc.get("lastEventAppliedIdx"),
                        "master_idx": ref.get("lastEventAppliedIdx")})
    return out


@dataclass
class Battery:
    cluster: LocalCluster
    nodes: list[NodeProcess]
    seed: int
    settle_timeout: float = 90.0
    rng: random.Random = field(init=False)
    ids: dict[str, str] = field(default_factory=dict)  # node name -> node id
    down: set[str] = field(default_factory=set)  # names clients must not pick right now
    faults: list[dict] = field(default_factory=list)
    touched: set[str] = field(default_factory=set)  # node ids a fault hit (their instances may go)
    instances_seen: dict[str, list[str]] = field(default_factory=dict)  # instance id -> node ids

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.ids = {n.name: n.get("/node_id") for n in self.nodes}
        self._lock = threading.Lock()

    # What clients see ---------------------------------------------------------------------

    def targets(self) -> list[tuple[str, str]]:
        with self._lock:
            return [(n.name, n.url) for n in self.nodes if n.name not in self.down and n.alive()]

    def _up(self) -> list[NodeProcess]:
        return [n for n in self.nodes if n.name not in self.down and n.alive()]

    def state(self) -> dict:
        return self.rng.choice(self._up()).get("/state", timeout=10)

    def note_instances(self) -> None:
        for iid, tagged in self.state()["instances"].items():
            self.instances_seen[iid] = list(unwrap(tagged)[1]["shardAssignments"]["nodeToRunner"])

    # Faults -------------------------------------------------------------------------------

    def _by_id(self, node_id: str) -> NodeProcess:
        return next(n for n in self.nodes if self.ids[n.name] == node_id)

    def _restart(self, node: NodeProcess) -> None:
        node.kill()
        node.start()
        self.cluster.wait_ready(node, timeout=90)

    def _kill_and_restart(self, node: NodeProcess) -> None:
        with self._lock:
            self.down.add(node.name)
        self.touched.add(self.ids[node.name])
        node.kill()
        time.sleep(self.rng.uniform(0.5, 2.0))  # the fault's length: the node stays dead this long
        self._restart(node)
        with self._lock:
            self.down.discard(node.name)

    def kill_master(self) -> str:
        node = self._by_id(self.state()["masterNodeId"])
        self._kill_and_restart(node)
        return node.name

    def kill_worker_midstream(self, model: str) -> str:
        drivers = [nid for tagged in self.state()["instances"].values()
                   for nid in unwrap(tagged)[1]["shardAssignments"]["nodeToRunner"]]
        node = self._by_id(self.rng.choice(drivers)) if drivers else self.rng.choice(self._up())
        stream = threading.Thread(target=slow_client, args=(node.url, model, 0.0), daemon=True)
        stream.start()  # a stream on the node at the kill, besides the pool's
        time.sleep(0.5)
        self._kill_and_restart(node)
        return node.name

    def stop_cont(self) -> str:
        node = self.rng.choice(self._up())
        self.touched.add(self.ids[node.name])
        os.killpg(node.proc.pid, signal.SIGSTOP)
        try:
            time.sleep(self.rng.uniform(2.0, 5.0))  # frozen this long: a stalled peer, not a dead one
        finally:
            os.killpg(node.proc.pid, signal.SIGCONT)
        return node.name

    def restart_same_home(self) -> str:
        node = self.rng.choice(self._up())
        with self._lock:
            self.down.add(node.name)
        self.touched.add(self.ids[node.name])
        node.kill(signal.SIGTERM)
        self._restart(node)
        with self._lock:
            self.down.discard(node.name)
        return node.name

    def slow(self, model: str) -> str:
        node = self.rng.choice(self._up())
        return f"{node.name}: {slow_client(node.url, model, self.rng.uniform(3.0, 8.0))}"

    def inject(self, kind: str, model: str) -> dict:
        t0 = time.monotonic()
        target = {"kill_master": self.kill_master, "stop_cont": self.stop_cont,
                  "restart_same_home": self.restart_same_home}.get(kind)
        target = target() if target else (self.kill_worker_midstream(model) if kind == "kill_worker_midstream"
                                          else self.slow(model))
        record = {"kind": kind, "target": target, "at": t0, "took_s": round(time.monotonic() - t0, 2)}
        self.faults.append(record)
        return record

    # Settling -----------------------------------------------------------------------------

    def settle(self, model: str) -> float:
        """Seconds until every node agrees (session, index, content) and an instance of the model is ready."""
        t0 = time.monotonic()

        def settled():
            if divergence(self.nodes):
                return False
            return bool(_ready_instances(self.rng.choice(self._up()), model))
        wait_until(settled, self.settle_timeout, interval=0.5, message="cluster settles after a fault")
        self.note_instances()
        return time.monotonic() - t0


def lost_instances(battery: Battery) -> list[str]:
    """Instances seen that are gone now, though no fault touched any of their nodes."""
    now = set(battery.state()["instances"])
    return sorted(iid for iid, nodes in battery.instances_seen.items()
                  if iid not in now and not set(nodes) & battery.touched)


def broken_by(records, faults) -> list[dict]:
    """For each fault, the seconds from it to the end of each non-ok request in flight at it."""
    out = []
    for f in faults:
        hit = [r for r in records if r.outcome != "ok" and r.start <= f["at"] <= r.end]
        out.append({"kind": f["kind"], "target": f["target"],
                    "ends_after_s": sorted(round(r.end - f["at"], 2) for r in hit)})
    return out


def _after_fault(t: float, faults: list[dict]) -> str:
    before = [f for f in faults if f["at"] <= t]
    if not before:
        return "before any fault"
    f = before[-1]
    return f"sent {t - f['at']:.1f}s after {f['kind']} of {f['target'][:12]}"


def summarize(pool: ClientPool, battery: Battery, usage_before: dict, usage_after: dict,
              diverged: list, lost: list, settles: list[float]) -> dict:
    recs = pool.records
    by = {k: [r for r in recs if r.outcome == k] for k in ("ok", "retryable", "other", "hung")}
    def explain(rs):
        return sorted(f"{'stream' if r.stream else 'plain'} via {r.node}, {_after_fault(r.start, battery.faults)}: "
                      f"{r.detail}" for r in rs)
    return {"requests": len(recs), "completed": len(by["ok"]), "retryable_errors": len(by["retryable"]),
            "other_errors": len(by["other"]), "other_error_details": explain(by["other"])[:50],
            "retryable_details": explain(by["retryable"])[:30], "hung": len(by["hung"]),
            "hung_details": explain(by["hung"])[:20], "lost": lost, "diverged": diverged,
            "faults": [{k: v for k, v in f.items() if k != "at"} for f in battery.faults],
            "fault_to_broken_request_end_s": broken_by(recs, battery.faults),
            "settle_s": [round(s, 2) for s in settles],
            "usage_before": usage_before, "usage_after": usage_after}


def start_serving_cluster(cluster: LocalCluster, size: int, model: str = MODEL,
                          ready_timeout: float = 240.0) -> list[NodeProcess]:
    """`size` nodes; the default model auto-placed, plus a second llama.cpp instance elsewhere."""
    nodes = [cluster.add_node(f"n{i}") for i in range(size)]
    for n in nodes:
        cluster.wait_ready(n, timeout=90)
    wait_until(lambda: _ready_instances(nodes[0], model), ready_timeout, interval=0.5, message="default model ready")
    first = _ready_instances(nodes[0], model)[0]
    used = list(first["shardAssignments"]["nodeToRunner"])
    resp = nodes[0].post("/place_instance", {"model_id": model, "instance_meta": "LlamaRpc",
                                             "excluded_nodes": used}, timeout=30)
    if resp.status_code < 300:
        wait_until(lambda: len(_ready_instances(nodes[0], model)) >= 2, ready_timeout, interval=0.5,
                   message="second instance ready")
    return nodes


def _ready_instances(node: NodeProcess, model: str) -> list[dict]:
    state = node.get("/state", timeout=10)
    out = []
    for tagged in state["instances"].values():
        inst = unwrap(tagged)[1]
        runners = inst["shardAssignments"]["runnerToShard"]
        if inst["shardAssignments"]["modelId"] == model and runners and all(
                next(iter(state["runners"].get(r, {"missing": 0}))) in ("RunnerReady", "RunnerRunning") for r in runners):
            out.append(inst)
    return out


def run_battery(cluster: LocalCluster, nodes: list[NodeProcess], *, clients: int, faults: int, seed: int,
                model: str = MODEL, kinds: tuple[str, ...] = FAULT_KINDS, max_requests: int = 5000) -> dict:
    battery = Battery(cluster, nodes, seed)
    battery.note_instances()
    before = process_usage(nodes)
    pool = ClientPool(battery.targets, model, clients, seed, max_requests=max_requests)
    pool.start()
    settles = []
    try:
        time.sleep(2.0)  # load running before the first fault
        for i in range(faults):
            battery.inject(battery.rng.choice(kinds), model)
            settles.append(battery.settle(model))
    finally:
        pool.finish()
    try:
        settles.append(battery.settle(model))
    except TimeoutError:
        pass  # reported below as divergence
    diverged = divergence(nodes)
    return summarize(pool, battery, before, process_usage(nodes), diverged, lost_instances(battery), settles)


def dumps(result: dict) -> str:
    return json.dumps(result, sort_keys=True)
