"""The supervisor never trusts its runner's output shape: a frame it cannot decode or handle is
counted and skipped (a task it was for ends with an error), and an instance this rank cannot
join fails the runner with the reason instead of raising out of the node."""

import sys

import trio

from skulk.faults import FAULTS
from skulk.runner import RunnerSupervisor
from skulk.types.runners import RunnerFailed, RunnerLoaded, RunnerReady

from .harness import Recorder, alive, greedy, kill_leftovers, ring_instance, supervisor

FAKE_RUNNER = r'''
import struct, sys, msgpack
out, inp = sys.stdout.buffer, sys.stdin.buffer
def frame(body):
    out.write(struct.pack("!I", len(body)) + body); out.flush()
def send(msg):
    frame(msgpack.packb(msg))
frame(b"\xc1")                                    # never valid msgpack
send([1, 2])                                      # msgpack, but not a map
send({"op": "loading", "layers_loaded": "lots"})  # a map of the wrong shape
send({"op": "ready"})
while True:
    head = inp.read(4)
    if len(head) < 4:
        break
    msg = msgpack.unpackb(inp.read(struct.unpack("!I", head)[0]))
    if msg["op"] == "warmup":
        send({"op": "warmed"})
    elif msg["op"] == "generate":
        send({"op": "chunk", "id": msg["id"], "token_ids": ["not", "ints"], "finished": False})
'''


def fake_runner_argv(*_args, **_kw):
    return [sys.executable, "-c", FAKE_RUNNER]


def test_garbage_frames_are_counted_and_the_runner_lives_on(models_dir, monkeypatch):
    monkeypatch.setattr("skulk.runner.supervisor.worker_argv", fake_runner_argv)
    rec, pids = Recorder(), []
    before = FAULTS.snapshot()
    sup = supervisor(ring_instance(1), 0, models_dir, rec)

    async def scenario():
        async with trio.open_nursery() as nursery:
            await nursery.start(sup.run)
            pids.append(sup.pid)
            await rec.wait_status(sup, RunnerLoaded, 30)
            await sup.warmup()
            await rec.wait_status(sup, RunnerReady, 10)
            await sup.submit("t1", greedy("hi"))
            await rec.wait_for(lambda: rec.finished("t1"), 10)
            assert alive(sup.pid) and isinstance(sup.status, RunnerReady)
            sup.abort("the node gave up on it")
        assert isinstance(sup.status, RunnerFailed) and sup.status.error_message == "the node gave up on it"

    try:
        trio.run(scenario)
    finally:
        assert not kill_leftovers(pids)
    after = FAULTS.snapshot()
    assert after.get("runner.frame_undecodable", 0) - before.get("runner.frame_undecodable", 0) == 2
    assert after.get("runner.frame_malformed", 0) - before.get("runner.frame_malformed", 0) == 2  # loading, chunk
    out = rec.finished("t1")
    assert out.error_code == "runner_error" and "malformed chunk" in out.error_message
    assert "RunnerFailed" not in rec.status_names()[:-1]  # only the abort failed it


def test_an_instance_this_rank_cannot_join_fails_the_runner_with_the_reason(tmp_path):
    inst = ring_instance(2)
    rec = Recorder()
    sup = RunnerSupervisor("runner-0", inst, "node-elsewhere", models_dir=tmp_path, on_status=rec.on_status,
                           on_output=rec.on_output)

    async def main():
        async with trio.open_nursery() as nursery:
            await nursery.start(sup.run)

    trio.run(main)
    assert sup.pid is None and isinstance(sup.status, RunnerFailed)
    assert "node-elsewhere has none ring hosts, expected 2" in sup.status.error_message
    assert rec.status_names() == ["RunnerIdle", "RunnerFailed"]


def test_abort_before_the_process_starts_fails_it_without_starting_one(tmp_path):
    rec = Recorder()
    sup = supervisor(ring_instance(1), 0, tmp_path, rec)
    sup.abort("instance malformed")

    async def main():
        async with trio.open_nursery() as nursery:
            await nursery.start(sup.run)

    trio.run(main)
    assert sup.pid is None and rec.status_names() == ["RunnerIdle", "RunnerFailed"]
    assert sup.status.error_message == "instance malformed"
