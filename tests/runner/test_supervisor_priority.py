"""The supervisor's generate frame carries the task's priority (the engine's queue orders by it)."""

import io

import trio

from skulk.engine.framing import read_frame
from skulk.types.runners import RunnerReady

from .harness import Recorder, greedy, ring_instance, supervisor


def test_submit_writes_the_priority_into_the_generate_frame(tmp_path):
    sup = supervisor(ring_instance(1), 0, tmp_path, Recorder())
    sup.status = RunnerReady()  # no process: only the frame it would write is looked at
    frames: list[bytes] = []

    async def capture(frame: bytes) -> bool:
        frames.append(frame)
        return True

    sup._send_frame = capture  # type: ignore[method-assign]

    async def main() -> None:
        await sup.submit("t-high", greedy("hi"), False, "high")
        await sup.submit("t-default", greedy("hi"))

    trio.run(main)
    decoded = [read_frame(io.BytesIO(f)) for f in frames]
    assert [(d["id"], d["priority"]) for d in decoded] == [("t-high", "high"), ("t-default", "normal")]
