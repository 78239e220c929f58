"""The worker hands each rank's spans of a traced task to the master, stamped with where they ran."""

from types import SimpleNamespace

from skulk.runner.outputs import traces_output
from skulk.types.events import TracesCollected
from skulk.types.state import State
from skulk.worker.service import WorkerService
from tests.factories import ring_instance


class FakeRouter:
    state = State()

    def __init__(self):
        self.sent = []

    def send_event(self, event):
        self.sent.append(event)


def test_rank_spans_become_a_traces_collected_event():
    router = FakeRouter()
    worker = WorkerService("n1", router, make_supervisor=None, send_output=None)
    worker.supervisors["r1"] = SimpleNamespace(rank=1, instance=ring_instance("i1", ["n0", "n1"]))
    frame = {"op": "traces", "id": "t1", "kind": "text", "spans": [
        {"name": "decode", "cat": "decode", "ts": 5, "dur": 3, "attrs": {"batch": 2, "nested": {"x": 1}}},
        {"name": "broken", "cat": "decode", "ts": "not a time", "dur": 1}, "not a span"]}
    worker._on_traces("r1", traces_output(frame))
    worker._on_traces("gone", traces_output(frame))  # a runner no longer supervised here: ignored
    (event,) = router.sent
    assert isinstance(event, TracesCollected) and (event.task_id, event.rank, event.node_id) == ("t1", 1, "n1")
    (span,) = event.traces
    assert (span.name, span.start_us, span.duration_us, span.rank, span.node_id) == ("decode", 5, 3, 1, "n1")
    assert span.model_id == "org/tiny" and span.task_kind == "text" and span.attrs == {"batch": 2}
