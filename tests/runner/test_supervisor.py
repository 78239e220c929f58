"""RunnerSupervisor with real worker_main processes on 127.0.0.1 and the tiny random model.
At most two rank processes run at a time; every test checks that none is left behind."""

import os
import shutil
import signal

import pytest
import trio

from skulk.types.ids import model_dir_name
from skulk.types.runners import (
    RunnerFailed,
    RunnerLoaded,
    RunnerReady,
    RunnerRunning,
    RunnerShutdown,
)

from .harness import MODEL_ID, Recorder, alive, greedy, kill_leftovers, ring_instance, supervisor

PROMPT = "what is the capital of France?"
LOAD_S = 60  # generous: the machine is shared; each wait returns as soon as its condition holds


def run_trio(scenario, pids: list):
    """trio.run(scenario), then fail if any runner process it started is still alive."""
    try:
        return trio.run(scenario)
    finally:
        left = kill_leftovers(pids)
        assert not left, f"runner processes left behind: {left}"


async def start(nursery: trio.Nursery, sup, pids: list) -> None:
    await nursery.start(sup.run)
    pids.append(sup.pid)


async def serve_one(rec: Recorder, sups: list, task_id: str, params, trace: bool = False) -> None:
    """Send a request to every rank and wait until each has finished it."""
    for sup in sups:
        await sup.submit(task_id, params, trace)
    assert all(isinstance(s.status, RunnerRunning) for s in sups)
    await rec.wait_for(lambda: rec.finished(task_id), 60)


# ----- single rank -----

@pytest.fixture(scope="module")
def solo(models_dir):
    """One full single-rank lifecycle; the tests below read its transcript."""
    pids: list = []
    rec = Recorder()
    result: dict = {"rec": rec, "pids": pids}

    async def scenario():
        sup = supervisor(ring_instance(1), 0, models_dir, rec)
        async with trio.open_nursery() as nursery:
            await start(nursery, sup, pids)
            await rec.wait_status(sup, RunnerLoaded, LOAD_S)
            await sup.warmup()
            await rec.wait_status(sup, RunnerReady, 30)
            await serve_one(rec, [sup], "g", greedy(PROMPT))
            await rec.wait_status(sup, RunnerReady, 5)
            await sup.submit("big", greedy("hi", max_tokens=10_000))  # refused: not a runner failure
            await rec.wait_for(lambda: rec.finished("big"), 10)
            await sup.submit("c", greedy(PROMPT, max_tokens=200), trace=True)
            # A few chunks in, so the prefill and at least one decode step are behind it when cancelled.
            await rec.wait_for(lambda: len(rec.outputs("c")) >= 3, 30)
            await sup.cancel("c")
            await rec.wait_for(lambda: rec.traces("c"), 30)  # after its final chunk
            result["alive_before_shutdown"] = alive(sup.pid)
            await sup.shutdown()
            await sup.shutdown()  # idempotent
        result["status"] = sup.status

    run_trio(scenario, pids)
    return result


def test_single_rank_lifecycle_statuses(solo):
    assert solo["rec"].status_names() == [
        "RunnerIdle", "RunnerLoading", "RunnerLoaded", "RunnerWarmingUp", "RunnerReady",
        "RunnerRunning", "RunnerReady",  # greedy request
        "RunnerRunning", "RunnerReady",  # refused request
        "RunnerRunning", "RunnerReady",  # cancelled request
        "RunnerShuttingDown", "RunnerShutdown",
    ]
    loading = [s for s in solo["rec"].statuses if type(s).__name__ == "RunnerLoading"]
    assert (loading[0].layers_loaded, loading[-1].layers_loaded, loading[-1].total_layers) == (0, 6, 6)
    assert isinstance(solo["status"], RunnerShutdown)
    assert solo["alive_before_shutdown"] and not alive(solo["pids"][0])


def test_single_rank_greedy_request_streams_then_finishes(solo):
    outs = solo["rec"].outputs("g")
    assert len(outs) == 12 and not any(o.finished for o in outs[:-1])
    final = outs[-1]
    assert final.finished and final.finish_reason == "length" and final.error_code is None
    assert final.usage.completion_tokens == 12 and final.usage.prompt_tokens > 0


def test_refused_and_cancelled_requests_end_their_streams(solo):
    (big,) = solo["rec"].outputs("big")
    assert big.finished and big.error_code == "context_length_exceeded" and big.error_message
    cancelled = solo["rec"].finished("c")
    assert cancelled.finish_reason == "cancelled" and len(solo["rec"].outputs("c")) < 200


def test_only_a_traced_request_reports_spans_after_its_final_chunk(solo):
    rec = solo["rec"]
    traces = rec.traces("c")
    assert rec.traces("g") is None and traces.kind == "text"
    assert rec.log.index(traces) > rec.log.index(rec.finished("c"))
    names = {(s["cat"], s["name"]) for s in traces.spans}
    assert {("prefill", "prefill"), ("decode", "decode"), ("marker", "cancelled")} <= names


# ----- two ranks -----

def test_two_rank_pipeline_matches_single_rank(models_dir, solo):
    pids: list = []
    recs = [Recorder(), Recorder()]

    async def scenario():
        inst = ring_instance(2)
        sups = [supervisor(inst, r, models_dir, recs[r]) for r in range(2)]
        async with trio.open_nursery() as nursery:
            for sup in sups:
                await start(nursery, sup, pids)
            for sup, rec in zip(sups, recs):
                await rec.wait_status(sup, RunnerLoaded, LOAD_S)
            for sup in sups:
                await sup.warmup()
            for sup, rec in zip(sups, recs):
                await rec.wait_status(sup, RunnerReady, 30)
            await serve_one(recs[0], sups, "g", greedy(PROMPT), trace=True)
            await recs[1].wait_for(lambda: recs[1].finished("g"), 30)  # the follower reports the final one
            for rec in recs:  # each rank reports its own spans of the traced request
                await rec.wait_for(lambda rec=rec: rec.traces("g"), 10)
            async with trio.open_nursery() as stopping:
                for sup in sups:
                    stopping.start_soon(sup.shutdown)
        return sups

    sups = run_trio(scenario, pids)
    for rec in recs:
        assert rec.status_names()[:3] == ["RunnerIdle", "RunnerConnecting", "RunnerConnected"]
        assert rec.status_names()[-2:] == ["RunnerShuttingDown", "RunnerShutdown"]
    solo_out, ring_out = solo["rec"].outputs("g"), recs[0].outputs("g")
    assert [t for o in ring_out for t in o.token_ids] == [t for o in solo_out for t in o.token_ids]
    assert "".join(o.text for o in ring_out) == "".join(o.text for o in solo_out)
    assert len(recs[1].outputs("g")) == 1 and recs[1].finished("g").finish_reason == "length"
    assert [s.rank for s in sups] == [0, 1] and not any(alive(p) for p in pids)
    first, last = ({s["cat"] for s in rec.traces("g").spans} for rec in recs)
    assert {"prefill", "decode", "collective", "pipeline"} <= first and "sample" not in first  # sends, waits
    assert {"prefill", "decode", "collective", "sample"} <= last and "pipeline" not in last  # samples


def test_killing_rank1_mid_generation_fails_rank0_and_ends_its_task(models_dir):
    pids: list = []
    recs = [Recorder(), Recorder()]

    async def scenario():
        inst = ring_instance(2)
        sups = [supervisor(inst, r, models_dir, recs[r]) for r in range(2)]
        async with trio.open_nursery() as nursery:
            for sup in sups:
                await start(nursery, sup, pids)
                await sup.warmup()  # asked early: it starts once the model is loaded
            for sup, rec in zip(sups, recs):
                await rec.wait_status(sup, RunnerReady, LOAD_S)
            for sup in sups:
                await sup.submit("long", greedy(PROMPT, max_tokens=200), trace=True)
            await recs[0].wait_for(lambda: recs[0].outputs("long"), 30)  # generation under way
            os.kill(sups[1].pid, signal.SIGKILL)
            await recs[0].wait_status(sups[0], RunnerFailed, 10)
            await recs[1].wait_status(sups[1], RunnerFailed, 10)
        # both run()s returned on their own: no shutdown() was needed
        return sups

    sups = run_trio(scenario, pids)
    assert "RunnerLoaded" in recs[0].status_names() and "RunnerWarmingUp" in recs[0].status_names()
    final = recs[0].finished("long")
    assert final.error_code == "runner_failed" and "ring peer lost" in final.error_message
    assert recs[0].log.index(final) < recs[0].log.index(sups[0].status)  # the stream ends before RunnerFailed
    assert sups[0].status.error_message.startswith("ring peer lost (another rank died)")
    assert sups[1].status.error_message.startswith("runner exited with code -9")
    assert not sups[0].active_tasks and not any(alive(p) for p in pids)
    aborted = [s for s in recs[0].traces("long").spans if s["name"] == "aborted"]  # reported before its fatal
    assert aborted and "ring peer lost" in aborted[0]["attrs"]["error"]


# ----- failures before or while starting -----

def _broken_copy(models_dir, tmp_path, breakage: str):
    """A models dir whose copy of the tiny model is damaged in one way."""
    root = tmp_path / "models"
    d = root / model_dir_name("test/broken")
    shutil.copytree(models_dir / model_dir_name(MODEL_ID), d)
    if breakage == "no-weights":
        (d / "model.safetensors").unlink()
    elif breakage == "no-tokenizer":
        (d / "tokenizer.json").unlink()
    elif breakage == "corrupt-weights":
        data = (d / "model.safetensors").read_bytes()
        (d / "model.safetensors").write_bytes(data[: len(data) // 2])  # a cut-off download
    elif breakage == "no-config":
        (d / "config.json").unlink()
    elif breakage == "absent":
        shutil.rmtree(d)
    return root


@pytest.mark.parametrize("breakage, expected", [
    ("no-weights", "no *.safetensors weight files"),
    ("no-tokenizer", "no tokenizer"),
    ("corrupt-weights", "model.safetensors: tensor"),
    ("no-config", "missing config.json"),
    ("absent", "'test/broken' is not on this node"),
])
def test_unreadable_model_dir_fails_with_the_problem_named(models_dir, tmp_path, breakage, expected):
    root = _broken_copy(models_dir, tmp_path, breakage)
    rec, pids = Recorder(), []

    async def scenario():
        sup = supervisor(ring_instance(1, model_id="test/broken"), 0, root, rec)
        with trio.fail_after(30):
            async with trio.open_nursery() as nursery:
                await start(nursery, sup, pids)
        return sup

    sup = run_trio(scenario, pids)
    assert sup.pid is None  # nothing was started
    assert rec.status_names() == ["RunnerIdle", "RunnerFailed"]
    assert expected in sup.status.error_message
    if breakage != "absent":
        assert sup.status.error_message.startswith(f"model directory {root / 'test--broken'}: ")


def test_connect_deadline_with_a_missing_peer(models_dir):
    rec, pids = Recorder(), []

    async def scenario():
        inst = ring_instance(2)  # rank 1 never starts
        sup = supervisor(inst, 0, models_dir, rec, SKULK_GROUP_CONNECT_DEADLINE_SECONDS="2")
        with trio.fail_after(30):
            async with trio.open_nursery() as nursery:
                await start(nursery, sup, pids)
        return sup

    sup = run_trio(scenario, pids)
    assert rec.status_names() == ["RunnerIdle", "RunnerConnecting", "RunnerFailed"]
    assert sup.status.error_message.startswith("group connect deadline (2 s) exceeded")
    assert not alive(pids[0])


def test_warmup_deadline_kills_a_wedged_runner(models_dir):
    rec, pids = Recorder(), []

    async def scenario():
        sup = supervisor(ring_instance(1), 0, models_dir, rec, SKULK_WARMUP_DEADLINE_SECONDS="1")
        async with trio.open_nursery() as nursery:
            await start(nursery, sup, pids)
            await rec.wait_status(sup, RunnerLoaded, LOAD_S)
            os.kill(sup.pid, signal.SIGSTOP)  # wedge it: it will never answer the warmup
            await sup.warmup()
            await rec.wait_status(sup, RunnerFailed, 10)
        return sup

    sup = run_trio(scenario, pids)
    assert sup.status.error_message == "warmup deadline (1 s) exceeded"
    assert rec.status_names()[-2:] == ["RunnerWarmingUp", "RunnerFailed"]


def test_cancelling_run_kills_the_runner(models_dir):
    rec, pids = Recorder(), []

    async def scenario():
        sup = supervisor(ring_instance(1), 0, models_dir, rec)
        async with trio.open_nursery() as nursery:
            await start(nursery, sup, pids)
            await rec.wait_for(lambda: len(rec.statuses) > 1, LOAD_S)  # loading has begun
            nursery.cancel_scope.cancel()
        return sup

    sup = run_trio(scenario, pids)
    assert isinstance(sup.status, RunnerShutdown) and not alive(pids[0])
