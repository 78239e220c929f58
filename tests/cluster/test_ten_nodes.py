"""Ten real `--no-worker` nodes on loopback: they converge on one session and fail over.

Bounds are generous for a 2-core machine shared with other work, yet far below what a stuck
election (the 3 s campaign repeated) or a missed discovery (no convergence at all) would take.
"""

import pytest

from skulk.testing.scale_real import converge, failover, start_nodes

SIZE = 10
CONVERGE_BOUND_S = 20.0
FAILOVER_BOUND_S = 10.0


# Found by bench_scale (2026-12-02): with 6+ nodes, ~20 s after agreeing, every follower starts
# a round and elects itself; the split persists. See docs/scaling.md "Defects found".
@pytest.mark.xfail(reason="split brain at 6+ nodes (docs/scaling.md, Defects found)", strict=False)
def test_ten_nodes_converge_and_fail_over(cluster):
    nodes = start_nodes(cluster, SIZE)  # each dials only the first three: discovery finds the rest
    conv_s, docs = converge(nodes, timeout=60)
    assert conv_s < CONVERGE_BOUND_S, f"converged in {conv_s:.1f}s"
    master = docs[0]["sessionId"]["masterNodeId"]
    assert all(d["sessionId"]["masterNodeId"] == master for d in docs)
    assert len(docs[0]["nodeIdentities"]) == SIZE

    fo_s, rest, new_master = failover(nodes, docs, timeout=60)
    assert fo_s < FAILOVER_BOUND_S, f"failed over in {fo_s:.1f}s"
    assert new_master != master
    assert len(rest) == SIZE - 1
