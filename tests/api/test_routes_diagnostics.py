"""Diagnostics routes in process: timelines, one node by id, runner cancel and capture, with a fake port."""

import os
import socket
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest
import trio
from starlette.testclient import TestClient

from skulk.api import routes_diagnostics
from skulk.api.app import create_app
from skulk.errors import NotFound
from skulk.models import ModelCatalog
from skulk.node.facade import ClusterFacade
from skulk.node.flight_recorder import FlightRecorder
from skulk.types.commands import CancelCommand
from skulk.types.ids import Memory, SessionId
from skulk.types.node import MemoryUsage, NetworkInterfaceInfo, NodeIdentity, SystemPerformanceProfile
from skulk.types.state import State
from skulk.types.tasks import ChatMessage, TaskStatus, TextGeneration, TextGenerationTaskParams
from skulk.types.wire import NodeHeartbeat
from tests.factories import ring_instance

RUNNER = {"runnerId": "i1-r0", "instanceId": "i1", "pid": 999_999, "activeTasks": ["t1"], "status": "RunnerReady"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def beat(node_id: str, api_port: int) -> NodeHeartbeat:
    gb = Memory.from_gb(1)
    return NodeHeartbeat(
        node_id=node_id, sent_at=datetime.now(UTC), identity=NodeIdentity(friendly_name=node_id, hostname="h"),
        memory=MemoryUsage(ram_total=gb, ram_available=gb, swap_total=gb, swap_available=gb),
        system=SystemPerformanceProfile(), api_port=api_port,
        interfaces=[NetworkInterfaceInfo(name="lo", ip_address="127.0.0.1")])


def text_task(task_id: str, status: TaskStatus = TaskStatus.Running) -> TextGeneration:
    params = TextGenerationTaskParams(model="org/tiny", input=[ChatMessage(role="user", content="hi")])
    return TextGeneration(task_id=task_id, instance_id="i1", command_id=f"cmd-{task_id}", task_status=status,
                          task_params=params)


class DiagPort:
    node_id = "a"
    friendly_name = "alpha"
    session = SessionId(master_node_id="a", election_clock=1)
    is_master = True
    history: list = []
    catalog = ModelCatalog()

    def __init__(self, beats=None, cancels=True):
        self.state = State(instances={"i1": ring_instance("i1", ["a", "dead"])}, tasks={"t1": text_task("t1")})
        self.beats = beats or {}
        self.flight_recorder = FlightRecorder("a")
        self.cancelled: list = []
        if not cancels:
            self.cancel_runner_task = None

    def live_telemetry(self):
        return self.beats, {n: 0.0 for n in self.beats}

    def node_memory(self):
        return {}

    def node_names(self):
        return {}

    def diagnostics(self):
        return {"processes": [{"pid": os.getpid(), "role": "node"}, {"pid": 999_999, "role": "runner"}],
                "supervisorRunners": [dict(RUNNER)], "warnings": []}

    async def cancel_runner_task(self, runner_id, task_id):
        if runner_id != "i1-r0":
            raise NotFound(f"Runner {runner_id} is not supervised by this node", param="runner_id")
        self.cancelled.append((runner_id, task_id))
        return {"nodeId": "a", "runnerId": runner_id, "taskId": task_id, "status": "cancel_requested",
                "message": "sent"}


def client(port) -> TestClient:
    return TestClient(create_app(port), backend="trio", raise_server_exceptions=False)


def test_node_timeline_and_cluster_timeline_with_an_unreachable_peer():
    port = DiagPort(beats={"a": beat("a", free_port()), "dead": beat("dead", free_port())})
    port.flight_recorder.record("runner_status", runnerId="i1-r0", status="RunnerReady")
    port.flight_recorder.record("task_forwarded", runnerId="i1-r0", taskId="t1", rank=0)
    c = client(port)
    own = c.get("/v1/diagnostics/node/timeline").json()
    assert own["nodeId"] == "a" and own["capacity"] == 500 and [e["kind"] for e in own["entries"]] == [
        "runner_status", "task_forwarded"]
    doc = c.get("/v1/diagnostics/cluster/timeline").json()
    assert doc["localNodeId"] == "a" and doc["masterNodeId"] == "a"
    assert [e["kind"] for e in doc["timeline"]] == ["runner_status", "task_forwarded"]
    (dead,) = doc["unreachableNodes"]
    assert dead["nodeId"] == "dead" and dead["error"]
    runners = {r["runnerId"]: r for r in doc["runners"]}
    assert runners["i1-r0"]["lastEntryAt"] == own["entries"][-1]["at"] and runners["i1-r1"]["nodeId"] == "dead"
    assert runners["i1-r0"]["openTaskIds"] == ["t1"]


def test_one_node_by_id_local_unknown_and_unreachable():
    port = DiagPort(beats={"dead": beat("dead", free_port())})
    c = client(port)
    local = c.get("/v1/diagnostics/cluster/a")
    assert local.status_code == 200 and local.json()["runtime"]["nodeId"] == "a"
    unknown = c.get("/v1/diagnostics/cluster/nobody")
    assert unknown.status_code == 404 and unknown.json()["error"]["param"] == "node_id"
    dead = c.post("/v1/diagnostics/cluster/dead/runners/r/cancel", json={"taskId": "t1"})
    assert dead.status_code == 502, dead.text
    assert c.post("/v1/diagnostics/cluster/nobody/capture", json={}).status_code == 404


def test_runner_cancel_local_and_by_node_id():
    port = DiagPort()
    c = client(port)
    resp = c.post("/v1/diagnostics/node/runners/i1-r0/cancel", json={"taskId": "t1"})
    assert resp.status_code == 200 and resp.json()["status"] == "cancel_requested"
    assert c.post("/v1/diagnostics/cluster/a/runners/i1-r0/cancel", json={"taskId": "t2"}).status_code == 200
    assert port.cancelled == [("i1-r0", "t1"), ("i1-r0", "t2")]
    assert c.post("/v1/diagnostics/node/runners/nope/cancel", json={"taskId": "t1"}).status_code == 404


@pytest.mark.parametrize("body, status", [
    (b"", 400), (b"{nope", 400), (b"[]", 422), (b'{"taskId": ""}', 422), (b'{"taskId": 5}', 422), (b"{}", 422)])
def test_runner_cancel_rejects_bad_bodies(body, status):
    resp = client(DiagPort()).post("/v1/diagnostics/node/runners/i1-r0/cancel", content=body)
    assert resp.status_code == status and "error" in resp.json()


def test_runner_cancel_without_a_worker_is_503():
    resp = client(DiagPort(cancels=False)).post("/v1/diagnostics/node/runners/r/cancel", json={"taskId": "t"})
    assert resp.status_code == 503


@pytest.mark.parametrize("body", [{"sampleDurationSeconds": 0.5}, {"sampleDurationSeconds": 11},
                                  {"includeProcessSamples": "maybe"}, {"runnerId": 3}, []])
def test_capture_rejects_bad_bodies(body):
    resp = client(DiagPort()).post("/v1/diagnostics/node/capture", json=body)
    assert resp.status_code == 422, resp.text


def test_capture_matches_runner_and_samples_off_the_loop(monkeypatch):
    calls = []

    def fake_samples(roles, seconds, interval):
        calls.append((roles, seconds, trio.lowlevel.in_trio_run()))
        return {"durationSeconds": seconds, "samples": [], "errors": []}
    monkeypatch.setattr(routes_diagnostics, "sample_processes", fake_samples)
    port = DiagPort()
    port.flight_recorder.record("task_forwarded", runnerId="i1-r0", taskId="t1", rank=0)
    port.flight_recorder.record("session_changed", masterNodeId="a", electionClock=1)
    c = client(port)
    doc = c.post("/v1/diagnostics/node/capture", json={"taskId": "t1", "sampleDurationSeconds": 2}).json()
    assert doc["runner"]["runnerId"] == "i1-r0" and doc["task"]["TextGeneration"]["taskId"] == "t1"
    assert [e["kind"] for e in doc["matchedEntries"]] == ["task_forwarded"]
    assert len(doc["flightRecorder"]["entries"]) == 2 and doc["diagnostics"]["runtime"]["nodeId"] == "a"
    assert calls == [({os.getpid(): "node", 999_999: "runner"}, 2.0, False)]  # in a worker thread
    assert doc["processSamples"]["durationSeconds"] == 2.0
    bare = c.post("/v1/diagnostics/cluster/a/capture", json={"includeProcessSamples": False}).json()
    assert bare["processSamples"] is None and bare["runner"] is None and len(calls) == 1
    missing = c.post("/v1/diagnostics/node/capture", json={"runnerId": "nope"})
    assert missing.status_code == 404 and missing.json()["error"]["param"] == "runnerId"


# --- the facade's cancel, over the real decision and command path ---

def facade(state: State, supervisors: dict, has_worker: bool = True) -> tuple[ClusterFacade, list]:
    sent: list = []

    async def send(target, message):
        sent.append((target, message.command))
    session = SessionId(master_node_id="m", election_clock=1)
    router = SimpleNamespace(state=state, session=session)
    f = ClusterFacade(node_id="a", friendly_name="a", router=router, sessions=None, telemetry=None,
                      messenger=SimpleNamespace(send=send), streams=None, catalog=None, liveness_timeout=5,
                      note_command=lambda: None, counters=dict, net=None, supervisors=lambda: supervisors,
                      has_worker=has_worker)
    return f, sent


def test_facade_cancel_sends_cancel_command_or_asks_the_runner():
    direct: list = []

    async def cancel(task_id):
        direct.append(task_id)
    sup = SimpleNamespace(instance=ring_instance("i1", ["a"]), active_tasks=frozenset({"orphan"}), cancel=cancel)
    state = State(tasks={"t1": text_task("t1"), "t9": text_task("t9", TaskStatus.Complete)})
    f, sent = facade(state, {"i1-r0": sup})

    async def main():
        first = await f.cancel_runner_task("i1-r0", "t1")
        assert first["status"] == "cancel_requested" and first["nodeId"] == "a"
        assert (await f.cancel_runner_task("i1-r0", "orphan"))["status"] == "cancel_requested"
        assert (await f.cancel_runner_task("i1-r0", "t9"))["status"] == "already_completed"
        with pytest.raises(NotFound):
            await f.cancel_runner_task("other", "t1")
    trio.run(main)
    ((target, command),) = sent
    assert target == "m" and isinstance(command, CancelCommand) and command.cancelled_command_id == "cmd-t1"
    assert direct == ["orphan"]
    assert [e["taskId"] for e in f.flight_recorder.entries()] == ["t1", "orphan"]


def test_facade_cancel_without_a_worker():
    f, _ = facade(State(), {}, has_worker=False)
    resp = client(f).post("/v1/diagnostics/node/runners/r/cancel", json={"taskId": "t"})
    assert resp.status_code == 503 and "worker" in resp.json()["error"]["message"]
