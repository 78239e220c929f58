"""The metric history store and sampler rows: sampling, step averages, pruning by age and by size."""

from datetime import datetime, timezone

from hypothesis import given, settings, strategies as st

from tests.factories import ring_instance
from skulk.node.metric_history import (
    FIELDS, MAX_POINTS, MetricHistory, MetricSampler, queue_depth, sample_of, wide_enough_step,
)
from skulk.types.ids import Memory
from skulk.types.node import AcceleratorInfo, DiskUsage, MemoryUsage, NodeIdentity, SystemPerformanceProfile
from skulk.types.state import State
from skulk.types.tasks import TaskStatus, TextGeneration
from skulk.types.wire import NodeHeartbeat

GB = 1024**3


def beat(cpu: float = 0.25, gpu: AcceleratorInfo | None = None) -> NodeHeartbeat:
    return NodeHeartbeat(
        node_id="n1", sent_at=datetime.now(timezone.utc), identity=NodeIdentity(friendly_name="n1"),
        memory=MemoryUsage(ram_total=Memory(in_bytes=16 * GB), ram_available=Memory(in_bytes=4 * GB),
                           swap_total=Memory(in_bytes=0), swap_available=Memory(in_bytes=0)),
        system=SystemPerformanceProfile(pcpu_usage=cpu, accelerator=gpu),
        disk=DiskUsage(total=Memory(in_bytes=100 * GB), available=Memory(in_bytes=60 * GB)))


def task(tid: str, instance: str, status: TaskStatus) -> TextGeneration:
    return TextGeneration(task_id=tid, instance_id=instance, command_id=f"c{tid}", task_status=status, model="org/tiny")


def test_a_sample_reads_the_heartbeat_and_this_nodes_queue() -> None:
    gpu = AcceleratorInfo(vendor="nvidia", name="H200", utilization_ratio=0.5, vram_total_bytes=80 * GB,
                          vram_used_bytes=20 * GB)
    state = State(instances={"i1": ring_instance("i1", ["n1"]), "i2": ring_instance("i2", ["n2"])})
    row = sample_of("n1", beat(0.25, gpu), state, 12.5, at=100.0)
    assert row["cpu_percent"] == 25.0 and row["memory_used_bytes"] == 12 * GB and row["memory_total_bytes"] == 16 * GB
    assert row["disk_used_bytes"] == 40 * GB and row["accelerator_percent"] == 50.0
    assert row["accelerator_memory_used_bytes"] == 20 * GB and row["tokens_per_second"] == 12.5
    no_gpu = sample_of("n1", beat(), state, None, at=100.0)
    assert "accelerator_percent" not in no_gpu and no_gpu["tokens_per_second"] is None


def test_queue_depth_counts_waiting_and_running_tasks_of_local_instances() -> None:
    tasks = {"t1": task("t1", "i1", TaskStatus.Pending), "t2": task("t2", "i1", TaskStatus.Running),
             "t3": task("t3", "i1", TaskStatus.Complete), "t4": task("t4", "i2", TaskStatus.Pending)}
    state = State(instances={"i1": ring_instance("i1", ["n1"]), "i2": ring_instance("i2", ["n2"])}, tasks=tasks)
    assert queue_depth(state, "n1") == 2 and queue_depth(state, "n2") == 1
    assert queue_depth(State(), "n1") == 0


def test_sampler_tokens_per_second_from_outputs() -> None:
    clock = iter([10.0, 12.0, 14.0]).__next__
    sampler = MetricSampler("n1", MetricHistory(None, retention_s=3600), own_beat=lambda: None,
                            state=State, interval=1, clock=clock)
    assert sampler.take_sample()["tokens_per_second"] is None  # no interval yet

    class Out:
        token_ids = [1, 2, 3, 4]
        text = "abcd"
    for _ in range(5):
        sampler.note_output(Out())
    assert sampler.take_sample()["tokens_per_second"] == 10.0  # 20 tokens in 2 s
    assert sampler.take_sample()["tokens_per_second"] == 0.0


def test_raw_rows_and_step_averages(tmp_path) -> None:
    store = MetricHistory(tmp_path / "h.sqlite3", retention_s=3600)
    for i in range(20):
        store.add({"at": 1000.0 + i, "cpu_percent": float(i), "queue_depth": i % 2, "memory_used_bytes": 100 * i})
    step, raw = store.query(1000.0, 1019.0)
    assert step is None and [r["at"] for r in raw] == [1000.0 + i for i in range(20)]
    assert set(raw[0]) == {"at", *FIELDS} and raw[3]["cpu_percent"] == 3.0
    step, avg = store.query(1000.0, 1019.0, step=10)
    assert step == 10 and [r["at"] for r in avg] == [1000.0, 1010.0]
    assert avg[0]["cpu_percent"] == 4.5 and avg[1]["cpu_percent"] == 14.5
    assert avg[0]["queue_depth"] == 0.5 and avg[0]["memory_used_bytes"] == 450
    assert store.query(1005.0, 1007.0)[1][0]["at"] == 1005.0  # since/until bound the range
    assert store.clear() == 20 and store.query(0, 10**10) == (None, [])
    store.close()


def test_a_wide_range_is_averaged_to_at_most_max_points(tmp_path) -> None:
    store = MetricHistory(tmp_path / "h.sqlite3", retention_s=10**9)
    for i in range(MAX_POINTS + 500):
        store.add({"at": float(i), "cpu_percent": 1.0})
    step, rows = store.query(0.0, float(MAX_POINTS + 499))
    assert step == wide_enough_step(0.0, MAX_POINTS + 499.0) == 2.0
    assert len(rows) <= MAX_POINTS and all(r["cpu_percent"] == 1.0 for r in rows)


def test_pruned_by_age(tmp_path) -> None:
    store = MetricHistory(tmp_path / "h.sqlite3", retention_s=60)
    for at in (0.0, 30.0, 70.0, 100.0):
        store.add({"at": at, "cpu_percent": 1.0})
    assert [r["at"] for r in store.query(0, 1000)[1]] == [70.0, 100.0]  # older than 100 - 60 are gone


@settings(max_examples=40, deadline=None)
@given(times=st.lists(st.floats(min_value=0, max_value=10_000, allow_nan=False), min_size=1, max_size=120),
       cap=st.integers(min_value=1, max_value=30), retention=st.integers(min_value=1, max_value=5_000),
       clear_at=st.integers(min_value=-1, max_value=120))
def test_the_bound_always_holds(times, cap, retention, clear_at) -> None:
    """Whatever the timestamps (even going backwards) and clears: at most `cap` rows, none older
    than the retention before the newest write's time, and the newest sample is always kept."""
    store = MetricHistory(None, retention_s=retention, max_rows=cap)
    for i, at in enumerate(times):
        if i == clear_at:
            store.clear()
        store.add({"at": at, "cpu_percent": 1.0}, now=at)
        assert store.count() <= cap
    rows = store.query(-1.0, 10**6)[1]
    last = times[-1]
    assert all(r["at"] >= last - retention for r in rows)
    assert any(r["at"] == last for r in rows)
    store.close()
