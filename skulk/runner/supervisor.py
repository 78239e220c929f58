"""RunnerSupervisor: one rank's runner subprocess (skulk.engine.worker_main), seen from the node.

It resolves the model directory, starts the process with this rank's ring environment, turns
the process's frames into RunnerStatus changes and RunnerOutputs, enforces the connect, load
and warmup deadlines, and always reaps the process: after a shutdown, a failure, or when
run() is cancelled. MLX itself is never imported here.
"""

import logging
import os
import subprocess
import tempfile
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import trio

from skulk.engine.distributed import write_hostfile
from skulk.errors import SkulkError
from skulk.models import ModelCatalog
from skulk.faults import count, isolate
from skulk.runner.frames import FrameError, FrameReader, UndecodableFrame, UnsendableFrame, encode_frame, parse_frame
from skulk.types import runner_frames as frames
from skulk.runner.launch import (
    AnyInstance,
    Deadlines,
    device_launch,
    exit_reason,
    fatal_reason,
    own_shard,
    ring_entries,
    worker_argv,
    worker_env,
)
from skulk.runner.model_prep import prepare_runner_model
from skulk.runner.outputs import RunnerOutput, RunnerTraces, chunk_output, embedding_output, error_output, traces_output
from skulk.runner.runner_log import RunnerLogConfig, RunnerLogFile
from skulk.runner.stderr import StderrDrain
from skulk.types.priority import DEFAULT_PRIORITY
from skulk.types.runners import (RunnerConnected, RunnerConnecting, RunnerFailed, RunnerIdle, RunnerLoaded,
                                 RunnerLoading, RunnerPaused, RunnerReady, RunnerRunning, RunnerShutdown,
                                 RunnerShuttingDown, RunnerStatus, RunnerWarmingUp)
from skulk.types.tasks import TextEmbeddingTaskParams, TextGenerationTaskParams

log = logging.getLogger(__name__)

EXIT_GRACE_S = 5.0  # each shutdown step (ask, SIGTERM) gets this long before the next one
STDERR_GRACE_S = 1.0  # after exit, time to read the last stderr lines for the failure message
# Our own connect backstop: the worker's deadline plus interpreter/MLX start-up and MLX's retries.
CONNECT_GRACE_S = 30.0
_ENDING = (RunnerShuttingDown, RunnerShutdown, RunnerFailed)
_TERMINAL = (RunnerShutdown, RunnerFailed)


class RunnerSupervisor:
    """Runs one rank of `instance` on this node; see the module docstring."""

    def __init__(
        self, runner_id: str, instance: AnyInstance, node_id: str, *, models_dir: Path,
        extra_model_dirs: Sequence[Path] = (), offline: bool = False,
        on_status: Callable[[str, RunnerStatus], None], on_output: Callable[[RunnerOutput], None],
        on_traces: Callable[[str, RunnerTraces], None] | None = None,
        env: Mapping[str, str] | None = None, cpus: list[int] | None = None,
        catalog: ModelCatalog | None = None, prepare_model: Callable[[str], Awaitable[None]] | None = None,
        runner_log: RunnerLogConfig | None = None, hf_token: str | None = None,
    ):
        self.runner_id, self.instance, self.node_id = runner_id, instance, node_id
        self._shard = own_shard(instance, runner_id)
        self.rank, self.world_size = self._shard.device_rank, self._shard.world_size
        self._entries: list[str] = []  # checked when run() starts: a bad instance fails the runner
        self._models_dir, self._extra_dirs, self._offline = Path(models_dir), tuple(extra_model_dirs), offline
        self._catalog = catalog  # lets a card's source package produce the model dir
        self._prepare_model = prepare_model  # e.g. staging from the model store, before resolving
        self._hf_token = hf_token  # for a hub download here; the runner process never gets it
        self._on_status, self._on_output = on_status, on_output
        self._on_traces = on_traces  # (runner id, a traced task's spans from this rank)
        self._base_env = dict(env if env is not None else os.environ)
        self._deadlines = Deadlines.from_env(self._base_env)
        self._cpus = list(cpus) if cpus else None
        self.status: RunnerStatus = RunnerIdle()
        self._active: set[str] = set()
        self._proc: trio.Process | None = None
        self._failure: str | None = None
        self._stop = trio.Event()
        self._done = trio.Event()
        self._write_lock = trio.Lock()
        self._timer = trio.CancelScope()
        self._timer_reason = ""
        self._resolve_scope: trio.CancelScope | None = None
        self._stderr = StderrDrain(runner_id, RunnerLogFile(
            runner_log, runner_id, instance=instance.instance_id,
            model=instance.shard_assignments.model_id, rank=f"{self.rank}/{self.world_size}"))
        self._run_started = False
        self._warmup_wanted = False
        self._resuming = False  # a paused runner reloading in place: ready again without a warmup

    @property
    def active_tasks(self) -> frozenset[str]:
        return frozenset(self._active)

    @property
    def pid(self) -> int | None:
        """The runner process id while one was started (for diagnostics and tests)."""
        return self._proc.pid if self._proc is not None else None

    @property
    def log_file(self) -> RunnerLogFile:
        """Where this runner's stderr is copied (diagnostics show its path)."""
        return self._stderr.log_file

    @property
    def deadlines(self) -> Deadlines:
        return self._deadlines

    # ----- lifecycle -----

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """Start the runner and follow it until its process has exited; see the module docstring."""
        if self._run_started:
            raise RuntimeError("RunnerSupervisor.run() can only be called once")
        self._run_started = True
        self._report(RunnerIdle(), force=True)
        try:
            with tempfile.TemporaryDirectory(prefix="skulk-runner-") as tmp:
                proc = await self._launch(Path(tmp))
                task_status.started()
                if proc is not None:
                    await self._follow(proc)
        except Exception as exc:  # a bug here, or in a callback: still reap and report it
            self._set_failure(f"runner supervisor error: {type(exc).__name__}: {exc}")
            raise
        except BaseException:
            self._stop.set()  # torn down from outside (cancelled): a deliberate stop, not a failure
            raise
        finally:
            self._conclude()
            self._done.set()

    async def warmup(self) -> None:
        """Ask for the warmup generation (send to every rank); RunnerReady follows when it is done.
        Asked before the model is loaded, it starts as soon as it is."""
        if isinstance(self.status, (*_ENDING, RunnerWarmingUp, RunnerReady, RunnerRunning)):
            return  # failed or stopping meanwhile, or warmed already
        if not isinstance(self.status, RunnerLoaded):
            self._warmup_wanted = True
            return
        await self._begin_warmup()

    async def _begin_warmup(self) -> None:
        self._warmup_wanted = False
        self._report(RunnerWarmingUp())
        self._arm(self._deadlines.warmup_s, self._deadlines.warmup_exceeded())
        await self._send(frames.Warmup())

    async def submit(self, task_id: str, params: TextGenerationTaskParams | TextEmbeddingTaskParams,
                     trace: bool = False, priority: str = DEFAULT_PRIORITY) -> None:
        """Send a request to this rank's process (every rank of the instance gets every request);
        with `trace`, the process reports the task's spans when it ends (see on_traces)."""
        if task_id in self._active:
            return  # a repeat of a task already running here
        if not isinstance(self.status, (RunnerReady, RunnerRunning)):
            name = type(self.status).__name__
            self._emit_error(task_id, "runner_unavailable", f"runner {self.runner_id} is not ready ({name})")
            return
        op = "embed" if isinstance(params, TextEmbeddingTaskParams) else "generate"
        try:  # checked before writing: a frame the child cannot read would end the runner
            request = (frames.Embed(id=task_id, params=params, trace=trace) if op == "embed"
                       else frames.Generate(id=task_id, params=params, trace=trace, priority=priority))
            frame = encode_frame(request)
        except UnsendableFrame as exc:
            self._emit_error(task_id, "context_length_exceeded", f"request refused before the runner: {exc}")
            return
        self._active.add(task_id)
        self._settle()
        # If the write fails the process is gone; the exit handling ends this task's stream.
        await self._send_frame(frame)

    async def pause(self) -> None:
        """Free the model but keep the process (warm cache); only an idle, ready runner pauses."""
        if not isinstance(self.status, RunnerReady) or self._active:
            return
        self._report(RunnerPaused())  # at once: nothing more is forwarded while the child frees
        await self._send(frames.Pause())

    async def resume(self) -> None:
        """Reload a paused runner in place; RunnerLoaded follows, then the usual warmup."""
        if not isinstance(self.status, RunnerPaused):
            return
        self._report(RunnerLoading(layers_loaded=0, total_layers=1))
        self._resuming = True
        self._arm(self._deadlines.load_s, self._deadlines.load_exceeded())
        await self._send(frames.Resume())

    async def cancel(self, task_id: str) -> None:
        """Ask rank 0 to stop a task; its final chunk (finish_reason "cancelled") still follows."""
        if task_id in self._active:
            await self._send(frames.Cancel(id=task_id))

    def abort(self, reason: str) -> None:
        """Fail this runner now (the node could not handle it): kill it; run() reports RunnerFailed(reason)."""
        self._set_failure(reason)
        if self._resolve_scope is not None:
            self._resolve_scope.cancel()
        if self._proc is not None and self._proc.returncode is None:
            self._proc.kill()

    async def shutdown(self) -> None:
        """Stop the runner: ask, wait, SIGTERM, SIGKILL; ends in RunnerShutdown. Idempotent."""
        with trio.CancelScope(shield=True):
            self._stop.set()
            if self._resolve_scope is not None:
                self._resolve_scope.cancel()
            if self._run_started:
                await self._done.wait()
            self._report(RunnerShutdown())

    # ----- starting -----

    async def _launch(self, tmp: Path) -> trio.Process | None:
        """Resolve the model and start the process; None (with the reason recorded) if not started."""
        if self._stop.is_set() or self._failure is not None:
            return None  # shut down (or aborted) before it ever ran
        try:  # before any download: an instance this rank cannot join fails at once, with the reason
            self._entries = ring_entries(self.instance, self.node_id, self.world_size)
        except SkulkError as exc:
            self._set_failure(exc.message)
            return None
        model_dir = await self._resolve_model()
        if model_dir is None or self._stop.is_set() or self._failure is not None:
            return None
        hostfile = write_hostfile(tmp / f"hosts-rank{self.rank}.json", self._entries) if self._entries else None
        argv = worker_argv(model_dir, self._shard, self._deadlines,
                           context_limit=self.instance.context_token_limit, cpus=self._cpus)
        env = worker_env(self._base_env, hostfile, self.rank, self.world_size, self._cpus, os.cpu_count() or 1)
        gpu_argv, pin_env = device_launch(self.instance)  # a LlamaRpc runner's GPU layers and device
        argv, env = argv + gpu_argv, env | pin_env
        try:
            # A new session: terminal signals reach the node, which then stops runners itself.
            self._proc = await trio.lowlevel.open_process(
                argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                env=env, start_new_session=True)
        except OSError as exc:
            self._set_failure(f"could not start the runner process: {exc}")
            return None
        log.info("runner %s (rank %d/%d) started as pid %d", self.runner_id, self.rank,
                 self.world_size, self._proc.pid)
        if self.world_size > 1:
            self._report(RunnerConnecting())
            self._arm(self._deadlines.connect_s + CONNECT_GRACE_S, self._deadlines.connect_exceeded())
        else:
            self._arm(self._deadlines.load_s, self._deadlines.load_exceeded())
        return self._proc

    async def _resolve_model(self) -> Path | None:
        with trio.CancelScope() as self._resolve_scope:
            model_dir, failure = await prepare_runner_model(
                self._shard, self.instance.shard_assignments.model_id, prepare=self._prepare_model,
                models_dir=self._models_dir, extra_dirs=self._extra_dirs, offline=self._offline,
                catalog=self._catalog, hf_token=self._hf_token)
            if failure is not None:
                self._set_failure(failure)
            return model_dir
        return None

    # ----- following the process -----

    async def _follow(self, proc: trio.Process) -> None:
        """Supervise until the process exits; kill and reap it on any way out."""
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._stderr.run, proc)
                nursery.start_soon(self._watch_deadline, proc)
                nursery.start_soon(self._stop_when_asked, proc)
                await self._pump_frames(proc)
                with trio.move_on_after(EXIT_GRACE_S):
                    await proc.wait()
                with trio.move_on_after(STDERR_GRACE_S):
                    await self._stderr.closed.wait()
                nursery.cancel_scope.cancel()
        finally:
            with trio.CancelScope(shield=True):
                if proc.returncode is None:
                    proc.kill()
                await proc.wait()
                for stream in (proc.stdin, proc.stdout, proc.stderr):
                    await stream.aclose()  # our ends of its pipes
            log.info("runner %s (pid %d) exited with code %s", self.runner_id, proc.pid, proc.returncode)

    async def _pump_frames(self, proc: trio.Process) -> None:
        reader = FrameReader(proc.stdout)
        while True:
            try:
                message = await reader.receive()
            except UndecodableFrame as exc:  # one whole bad frame: skipped, the stream is still in step
                count("runner.frame_undecodable", f"runner {self.runner_id}: {exc}")
                continue
            except FrameError as exc:
                self._set_failure(f"runner sent an unreadable frame: {exc}")
                proc.kill()
                return
            if message is None:
                return
            self._take_frame(message)
            if self._warmup_wanted and isinstance(self.status, RunnerLoaded):
                await self._begin_warmup()

    async def _watch_deadline(self, proc: trio.Process) -> None:
        with self._timer:  # only its deadline ever cancels it (see _arm)
            await trio.sleep_forever()
        self._set_failure(self._timer_reason)
        proc.kill()

    async def _stop_when_asked(self, proc: trio.Process) -> None:
        await self._stop.wait()
        self._disarm()
        self._report(RunnerShuttingDown())
        with trio.move_on_after(EXIT_GRACE_S):
            await self._send(frames.Shutdown())
            async with self._write_lock:
                await proc.stdin.aclose()
            await proc.wait()
        for escalate in (proc.terminate, proc.kill):
            if proc.returncode is not None:
                return
            escalate()
            with trio.move_on_after(EXIT_GRACE_S):
                await proc.wait()

    async def _send(self, message: Any) -> bool:
        """Write one frame to the process; False if it is gone."""
        return await self._send_frame(encode_frame(message))

    async def _send_frame(self, frame: bytes) -> bool:
        if self._proc is None:
            return False
        async with self._write_lock:
            try:
                await self._proc.stdin.send_all(frame)
                return True
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                return False

    # ----- frames -> statuses and outputs -----

    def _on_frame(self, msg: Any) -> None:
        """One typed frame from the runner (skulk.types.runner_frames)."""
        if isinstance(msg, frames.Connected):
            self._report(RunnerConnected())
            self._arm(self._deadlines.load_s, self._deadlines.load_exceeded())
        elif isinstance(msg, frames.Loading):
            self._report(RunnerLoading(layers_loaded=msg.layers_loaded, total_layers=msg.total_layers))
        elif isinstance(msg, frames.Ready):
            self._disarm()
            # a woken runner's process has warmed up once already: serve as soon as it reloaded
            self._report(RunnerReady() if self._resuming else RunnerLoaded())
            self._resuming = False
        elif isinstance(msg, frames.Paused):
            if isinstance(self.status, RunnerPaused):
                self._report(RunnerPaused(rss_bytes=msg.rss_bytes))
        elif isinstance(msg, frames.Warmed):
            self._disarm()
            if isinstance(self.status, RunnerWarmingUp):
                self._report(RunnerReady())
        elif isinstance(msg, (frames.Chunk, frames.Embedding)):
            self._on_chunk(msg)
        elif isinstance(msg, frames.Traces) and self._on_traces is not None:
            self._on_traces(self.runner_id, traces_output(msg))
        elif isinstance(msg, frames.Error):
            task_id = str(msg.id)
            if task_id in self._active:
                self._active.discard(task_id)
                self._emit_error(task_id, msg.code or "runner_error", msg.message)
                self._settle()
        elif isinstance(msg, frames.Fatal):
            self._set_failure(fatal_reason(msg.code, msg.message, self._deadlines))

    def _take_frame(self, msg: dict[str, Any]) -> None:
        """One frame, on its own: a malformed one is counted; a task it was for ends with an error."""
        try:
            self._on_frame(parse_frame(msg))
        except Exception as exc:  # noqa: BLE001 - never trust the shape of the runner's output
            op, task_id = msg.get("op"), str(msg.get("id"))
            count("runner.frame_malformed", f"runner {self.runner_id}: {op!r} frame: {type(exc).__name__}: {exc}"[:500])
            if op in ("chunk", "embedding") and task_id in self._active:
                self._active.discard(task_id)
                with isolate("runner.frame_malformed"):
                    self._emit_error(task_id, "runner_error", f"the runner sent a malformed {op} frame")
                    self._settle()

    def _on_chunk(self, msg: "frames.Chunk | frames.Embedding") -> None:
        task_id = msg.id
        if task_id not in self._active:
            return  # a task this supervisor already ended
        output = embedding_output(task_id, msg) if isinstance(msg, frames.Embedding) else chunk_output(task_id, msg)
        if output.finished:
            self._active.discard(task_id)
        self._on_output(output)
        if output.finished:
            self._settle()

    def _emit_error(self, task_id: str, code: str, message: str) -> None:
        self._on_output(error_output(task_id, code, message))

    def _settle(self) -> None:
        """Ready <-> Running as tasks come and go."""
        if isinstance(self.status, (RunnerReady, RunnerRunning)):
            self._report(RunnerRunning() if self._active else RunnerReady())

    def _conclude(self) -> None:
        """The process is gone (or never started): end open tasks, then report how it ended."""
        reason = self._failure
        if reason is None and not self._stop.is_set():
            code = self._proc.returncode if self._proc is not None else None
            last = self._stderr.last_line
            reason = exit_reason(code, self._deadlines, last) if code is not None else "runner never started"
        error_code, message = ("runner_failed", reason) if reason else ("runner_shutdown", "runner was shut down")
        for task_id in sorted(self._active):
            self._emit_error(task_id, error_code, message)
        self._active.clear()
        self._report(RunnerFailed(error_message=reason) if reason else RunnerShutdown())
        if reason:
            log.warning("runner %s failed: %s", self.runner_id, reason)

    def _set_failure(self, reason: str) -> None:
        # The first cause wins; once a stop was asked for, a dying ring is part of the stop.
        if self._failure is None and not self._stop.is_set():
            self._failure = reason

    def _report(self, status: RunnerStatus, *, force: bool = False) -> None:
        if status == self.status and not force:
            return
        if isinstance(self.status, _ENDING) and not isinstance(status, _TERMINAL):
            return  # nothing but the end follows ShuttingDown / Shutdown / Failed
        if isinstance(self.status, RunnerShutdown):
            return
        self.status = status
        self._on_status(self.runner_id, status)

    def _arm(self, seconds: float, reason: str) -> None:
        self._timer.deadline = trio.current_time() + seconds
        self._timer_reason = reason

    def _disarm(self) -> None:
        self._timer.deadline = float("inf")
