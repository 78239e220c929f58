"""A long-lived 2-node loopback cluster that serves the default model, for rogue-peer tests.

Node `a` runs the only worker (so rank 0 of every instance is on `a`); node `b` has no worker,
so a chat sent to `b` gets its chunks from `a` over the data plane.
"""

import pytest

from skulk.testing.cluster import LocalCluster, wait_until
from skulk.testing.serving import ready_instance
from tests.conftest import DEFAULT_MODEL

NAMESPACE = "skulk-test"


class RogueTarget:
    def __init__(self, cluster: LocalCluster):
        self.cluster = cluster
        self.a = cluster.add_node("a")
        self.b = cluster.add_node("b", extra_args=["--no-worker"])
        self.nodes = [self.a, self.b]
        for node in self.nodes:
            cluster.wait_ready(node, timeout=60)
        self.ids = {node.get("/node_id"): node for node in self.nodes}
        self.a_id, self.b_id = list(self.ids)
        wait_until(self.agreed, 30, message="one master for both nodes")

    def sessions(self) -> set[tuple[str, int]]:
        return {(s["masterNodeId"], s["electionClock"]) for s in (n.get("/state")["sessionId"] for n in self.nodes)}

    def agreed(self) -> tuple[str, int] | None:
        """The one session both nodes hold, mastered by one of them; None otherwise."""
        sessions = self.sessions()
        if len(sessions) != 1:
            return None
        session = next(iter(sessions))
        return session if session[0] in self.ids else None

    def faults(self, node) -> dict[str, int]:
        return node.get("/v1/diagnostics/node")["faults"]

    def all_faults(self) -> list[dict[str, int]]:
        return [self.faults(n) for n in self.nodes]

    def alive(self) -> bool:
        return all(n.proc.poll() is None for n in self.nodes)


@pytest.fixture(scope="module")
def rogue_target(tmp_path_factory, models_dir):
    root = tmp_path_factory.mktemp("rogue-cluster")
    cluster = LocalCluster(root, extra_env={"SKULK_MODELS_DIR": str(models_dir), "SKULK_SETTLE_GRACE_SECONDS": "5",
                                            "SKULK_DEFAULT_MODEL__AUTO_PLACE": "false"})
    try:
        target = RogueTarget(cluster)
        def placed():  # refused until the master's topology holds the worker node
            body = {"model_id": DEFAULT_MODEL, "min_nodes": 1, "excluded_nodes": [target.b_id]}  # b has no worker
            return target.b.post("/place_instance", body).status_code == 200
        wait_until(placed, 60, interval=0.5, message="placement accepted")
        try:
            ready_instance(target.b, DEFAULT_MODEL, timeout=300)  # the 2-core machine may be busy
        except TimeoutError as exc:
            raise AssertionError("\n".join(f"--- {n.name}\n{n.log_tail(30)}" for n in target.nodes)) from exc
        yield target
    finally:
        cluster.stop_all()


def moved(before: dict[str, int], after: dict[str, int], prefix: str) -> int:
    """How much the fault counters under `prefix` grew."""
    return sum(n - before.get(k, 0) for k, n in after.items() if k.startswith(prefix))
