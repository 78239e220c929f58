"""A request the runner could not read (over its frame limit, or not encodable) is refused by the
supervisor before anything is written: that task gets a 400-class error and the runner lives on."""

import pytest
import trio

from skulk.engine.framing import MAX_FRAME
from skulk.runner.frames import UnsendableFrame, encode_frame
from skulk.types.runners import RunnerLoaded, RunnerReady

from .harness import Recorder, alive, greedy, ring_instance, supervisor
from .test_supervisor import LOAD_S, PROMPT, run_trio, start


def test_encode_frame_refuses_what_the_child_cannot_read():
    with pytest.raises(UnsendableFrame, match="frame limit"):
        encode_frame({"op": "generate", "text": "x" * (MAX_FRAME + 1)})
    with pytest.raises(UnsendableFrame, match="encode"):
        encode_frame({"op": "generate", "seed": 2**70})
    assert len(encode_frame({"op": "warmup"})) < 32


def test_oversized_and_unencodable_tasks_fail_alone_and_the_runner_serves_on(models_dir):
    pids: list = []
    rec = Recorder()
    seen: dict = {}

    async def scenario():
        sup = supervisor(ring_instance(1), 0, models_dir, rec)
        async with trio.open_nursery() as nursery:
            await start(nursery, sup, pids)
            await rec.wait_status(sup, RunnerLoaded, LOAD_S)
            await sup.warmup()
            await rec.wait_status(sup, RunnerReady, 30)
            await sup.submit("huge", greedy("x" * (MAX_FRAME + 1)))
            await sup.submit("bigint", greedy(PROMPT).model_copy(update={"seed": 2**70}))
            seen["status_after"] = sup.status
            await sup.submit("ok", greedy(PROMPT))
            await rec.wait_for(lambda: rec.finished("ok"), 60)
            seen["alive"] = alive(sup.pid)
            await sup.shutdown()

    run_trio(scenario, pids)
    for task in ("huge", "bigint"):
        (out,) = rec.outputs(task)
        assert out.finished and out.error_code == "context_length_exceeded", out
        assert "before the runner" in out.error_message
    assert isinstance(seen["status_after"], RunnerReady)  # never counted as running
    ok = rec.finished("ok")
    assert ok.error_code is None and ok.finish_reason == "length" and seen["alive"]
    assert "RunnerFailed" not in rec.status_names()
