"""A node whose link to the master breaks for 40 s and heals rejoins with all its events indexed.

The break: the master is SIGSTOPped. Its TCP connections stay open, so the follower keeps its
session, but once the stream's flow-control window is full every send to the master times out.
"""

import os
import signal
import time

from skulk.testing.cluster import wait_until

BREAK_S = 40.0
# Enough bytes to fill the direct stream's window (256 KiB), so later sends really time out.
BURST_COUNT, PAD = 300, "x" * 1000
LATE_AT_S = (2.0, 8.0, 20.0, 35.0)  # more events while the master is stopped


def test_notes(node, origin_prefix):
    return [e["TestEvent"]["note"] for e in node.get("/events", timeout=10) if "TestEvent" in e
            and e["TestEvent"]["note"].startswith(origin_prefix)]


test_notes.__test__ = False  # a helper, not a test


def emit(node, note, count):
    assert node.post("/debug/test_events", {"count": count, "note": note}).status_code == 200
    return [f"{note}{i}" for i in range(count)]


def test_follower_rejoins_with_all_events_indexed_after_a_40s_break(cluster):
    master = cluster.add_node("a", extra_args=["--force-master", "--no-worker"])
    cluster.wait_ready(master)
    follower = cluster.add_node("b", extra_args=["--no-worker"])
    cluster.wait_ready(follower)
    a_id, b_id = master.get("/node_id"), follower.get("/node_id")

    def joined():
        docs = [n.get("/state") for n in (master, follower)]
        return all(d["masterNodeId"] == a_id and {a_id, b_id} <= set(d["nodeIdentities"]) for d in docs)
    wait_until(joined, 30, message="b joined a's session")
    expected = emit(follower, "b-pre-", 3)
    wait_until(lambda: test_notes(master, "b-") == expected, 15, message="events indexed before the break")

    os.killpg(master.proc.pid, signal.SIGSTOP)
    try:
        stopped_at = time.monotonic()
        expected += emit(follower, PAD + "-burst-", BURST_COUNT)
        for at in LATE_AT_S:
            time.sleep(max(0.0, stopped_at + at - time.monotonic()))  # the break itself is the test
            expected += emit(follower, f"b-late{at:g}-", 2)
        time.sleep(max(0.0, stopped_at + BREAK_S - time.monotonic()))
    finally:
        os.killpg(master.proc.pid, signal.SIGCONT)

    def all_indexed():  # at least once, in order (a resend after a session flap may repeat one)
        assert master.alive() and follower.alive()
        return list(dict.fromkeys(test_notes(master, ""))) == expected or None
    try:
        wait_until(all_indexed, 60, interval=1.0, message="every event b emitted indexed by a, in order")
    except TimeoutError:
        got = test_notes(master, "")
        missing = [n[-20:] for n in expected if n not in set(got)]
        raise AssertionError(f"{len(missing)} of {len(expected)} events missing, e.g. {missing[:5]}\n"
                             f"a:\n{master.log_tail(30)}\nb:\n{follower.log_tail(30)}") from None
    assert master.get("/state")["masterNodeId"] == a_id
