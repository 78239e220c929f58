"""A minimal standalone runner: one rank of one model, driven over stdin/stdout.

    python -m skulk.engine.worker_main --model-dir D [--shard-json J] [--connect-deadline S]
        [--max-concurrent N] [--context-limit N] [--prefill-step N] [--cpus 0,1]
    python -m skulk.engine.worker_main --engine llama_cpp --gguf FILE [--max-concurrent N]
        [--context-limit N] [--n-gpu-layers N] [--cpus 0,1]      llama.cpp, always one rank

Ring ranks take MLX_HOSTFILE / MLX_RANK from the environment (see distributed.rank_env);
--shard-json is a tagged ShardMetadata ({"PipelineShardMetadata": {...}}); without it the
process holds the whole model on a single rank.

Frames both ways are a 4-byte big-endian length followed by a msgpack map (framing.py); each map is
one model of skulk/types/runner_frames.py (ToRunner in, FromRunner out), validated on both sides.
stdin (send every request to every rank; rank 0 decides, followers use it to know when to step):
    {"op": "generate", "id": str, "params": TextGenerationTaskParams fields (snake or camelCase)}
    {"op": "embed", "id": str, "params": TextEmbeddingTaskParams fields}   embedding models only
        either may carry "trace": true: this rank then reports the request's spans (below)
        "generate" may carry "priority": "high"|"normal"|"low": rank 0 admits queued requests in that order
    {"op": "cancel", "id": str}          honoured by rank 0 only
    {"op": "warmup"}                      a tiny generation; send to all ranks
    {"op": "pause"}                       free the model (process, imports, ring stay); send to all ranks
    {"op": "resume"}                      load it again: loading/ready frames follow, then warm up
    {"op": "shutdown"}                    or close stdin
stdout:
    {"op": "connected", "rank", "world_size"}    ring ranks only, once the group has formed
    {"op": "loading", "layers_loaded": k, "total_layers": n}
    {"op": "ready", "rank", "world_size", "start_layer", "end_layer", "active_memory"}
    {"op": "chunk", "id", "text", "token_ids", "finished", "finish_reason", "usage"}
        rank 0 streams every chunk; followers send only the final one
        finish_reason: "stop" | "length" | "cancelled"; usage: prompt/completion/total_tokens
        stop_sequence: the stop string that ended it (finish_reason "stop"), else null
    {"op": "embedding", "id", "embeddings": [[float]], "prompt_tokens"}   (followers: no vectors)
    {"op": "error", "id", "code", "message"}      the request was refused (e.g. context_length_exceeded)
    {"op": "warmed", "tokens": n}
    {"op": "paused", "rss_bytes": n}             the model is freed; n is this process's resident memory
    {"op": "traces", "id", "kind": "text"|"embedding", "spans": [{"name", "cat", "ts", "dur", "attrs"}]}
        a traced request's spans (µs), after its final chunk, or with an "aborted" marker before fatal
    {"op": "fatal", "code", "message"}            then exit: 3 ring peer lost, 4 connect timeout, 2 other
Exit 0 on stdin close or shutdown. Exit 1 within ~1 s of the parent dying, or when MLX's own
ring init hangs past the backstop deadline (faulthandler prints the traceback on stderr).
"""

import argparse
import os
import queue
import sys
import threading
import time
from typing import Any, BinaryIO

from pydantic import BaseModel, TypeAdapter, ValidationError

from skulk.engine.admission import load_delay_s
from skulk.engine.distributed import init_group, pin_to_cpus
from skulk.engine.errors import GroupConnectTimeout, RingPeerLost
from skulk.engine.framing import read_frame, write_frame
from skulk.engine.pausing import PausableEngine
from skulk.engine.steps import PREFILL_STEP
from skulk.engine.tracing import now_us
from skulk.errors import SkulkError
from skulk.types import runner_frames as frames
from skulk.types.shards import ShardMetadata

# Engines load lazily: a llama.cpp runner never imports MLX, an MLX runner never llama.cpp.
Engine = Any
StepOutput = Any

EXIT_OTHER, EXIT_RING_LOST, EXIT_CONNECT_TIMEOUT = 2, 3, 4
_EOF = object()
_GROUP: list[Any] = []  # this process's ring group (None when alone), once formed


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="skulk.engine.worker_main")
    p.add_argument("--engine", choices=("mlx", "llama_cpp"), default="mlx")
    p.add_argument("--model-dir", default=None, help="MLX engine: the model directory")
    p.add_argument("--gguf", default=None, help="llama_cpp engine: the GGUF file")
    p.add_argument("--n-gpu-layers", type=int, default=None,
                   help="llama_cpp engine: layers to offload (default: llama.cpp's, all on a GPU build)")
    p.add_argument("--shard-json", default=None)
    p.add_argument("--connect-deadline", type=float, default=120.0)
    p.add_argument("--max-concurrent", type=int, default=None)
    p.add_argument("--context-limit", type=int, default=None)
    p.add_argument("--prefill-step", type=int, default=PREFILL_STEP, help="prompt tokens per forward")
    p.add_argument("--cpus", default=None, help="comma-separated CPU ids to pin this rank to")
    args = p.parse_args(argv)
    if args.engine == "mlx" and not args.model_dir:
        p.error("--model-dir is required for the mlx engine")
    if args.engine == "llama_cpp" and not args.gguf:
        p.error("--gguf is required for the llama_cpp engine")
    return args


def _protocol_stdout() -> BinaryIO:
    """Keep the real stdout for frames; anything else printing to fd 1 lands on stderr."""
    out = os.fdopen(os.dup(1), "wb", buffering=0)
    os.dup2(2, 1)
    return out


def _watch_parent(interval_s: float = 1.0) -> None:
    parent = os.getppid()

    def loop() -> None:
        while True:
            time.sleep(interval_s)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=loop, name="parent-watchdog", daemon=True).start()


def _read_stdin(inbox: "queue.Queue[Any]") -> None:
    stdin = sys.stdin.buffer
    while True:
        try:
            msg = read_frame(stdin)
        except (ValueError, OSError):
            msg = None
        inbox.put(_EOF if msg is None else msg)
        if msg is None:
            return


def _chunk(o: StepOutput) -> frames.Chunk:
    usage = frames.FrameUsage(prompt_tokens=o.usage.prompt_tokens, completion_tokens=o.usage.completion_tokens,
                              total_tokens=o.usage.total_tokens)
    return frames.Chunk(id=o.request_id, text=o.text, token_ids=o.token_ids, finished=o.finished,
                        finish_reason=o.finish_reason, usage=usage, stop_sequence=o.stop_sequence)


def _emit(out: BinaryIO, frame: Any) -> None:
    """Write one frame to the node; a map (from an engine helper) is checked as its model first."""
    write_frame(out, frame if isinstance(frame, BaseModel) else frames.from_runner(frame))


def _request(msg: dict[str, Any], out: BinaryIO) -> Any:
    """The node's map as its ToRunner model; a malformed request is answered, anything else ignored."""
    try:
        return frames.to_runner(msg)
    except ValidationError as e:
        if isinstance(msg, dict) and msg.get("op") in ("generate", "embed"):
            _emit(out, frames.Error(id=str(msg.get("id")), code="invalid_request", message=str(e)[:2000]))
        return None


def _handle(msg: dict[str, Any], engine: Engine, out: BinaryIO) -> bool:
    """Apply one request message; False means stop the process."""
    frame = _request(msg, out)
    busy = (frames.Generate, frames.Embed, frames.Warmup)
    if isinstance(frame, (frames.Pause, frames.Resume)) or (getattr(engine, "paused", False) and isinstance(frame, busy)):
        _pause_op(frame, engine, out)
    elif isinstance(frame, frames.Generate):
        try:
            engine.submit(frame.id, frame.params, trace=frame.trace, priority=frame.priority)
        except SkulkError as e:
            _emit(out, frames.Error(id=frame.id, code=e.code, message=e.message))
        except (ValueError, KeyError) as e:
            _emit(out, frames.Error(id=frame.id, code="invalid_request", message=str(e)))
    elif isinstance(frame, frames.Embed):
        start = now_us()
        reply = frames.from_runner(_embed_frame(engine, frame.wire()))
        _emit(out, reply)
        if frame.trace and isinstance(reply, frames.Embedding):
            span = {"name": "embed", "cat": "embed", "ts": start, "dur": now_us() - start, "attrs": {}}
            _emit(out, frames.Traces(id=frame.id, kind="embedding", spans=[span]))
    elif isinstance(frame, frames.Cancel):
        engine.cancel(frame.id)
    elif isinstance(frame, frames.Warmup):
        _emit(out, frames.Warmed(tokens=engine.warmup()))
    elif isinstance(frame, frames.Shutdown):
        return False
    return True


def _pause_op(frame: Any, engine: PausableEngine, out: BinaryIO) -> None:
    if isinstance(frame, frames.Pause):
        _emit(out, engine.pause())
    elif isinstance(frame, frames.Resume):
        engine.resume()
    else:  # the node never sends work to a paused runner; answer instead of failing the process
        _emit(out, frames.Error(id=getattr(frame, "id", None), code="runner_paused",
                                message="the runner is paused; retry once its deployment is awake"))


def _group_once(args: argparse.Namespace, out: BinaryIO) -> Any:
    """The ring group, formed once per process: it outlives a pause."""
    if not _GROUP:
        group = init_group(args.connect_deadline)
        if group is not None:
            _emit(out, frames.Connected(rank=group.rank(), world_size=group.size()))
        _GROUP.append(group)
    return _GROUP[0]


def _embed_frame(engine: Engine, msg: dict[str, Any]) -> dict[str, Any]:
    own = getattr(engine, "embed_frame", None)  # the llama.cpp engine answers for itself
    if own is not None:
        return own(msg)
    from skulk.engine.embed import embed_frame

    return embed_frame(engine, msg)


def _traces(engine: Engine, out: BinaryIO, task_id: str) -> None:
    """Report a traced request's spans (a no-op for untraced ones and embedding engines)."""
    tracer = getattr(engine, "tracer", None)
    spans = tracer.finish(task_id) if tracer is not None else None
    if spans is not None:
        _emit(out, frames.Traces(id=task_id, kind="text", spans=spans))


def serve(engine: Engine, inbox: "queue.Queue[Any]", out: BinaryIO) -> None:
    """The loop: take every waiting message, then step while there is work. Generation that
    raises still reports its traced requests, each with an "aborted" marker."""
    try:
        _serve(engine, inbox, out)
    except Exception as e:
        tracer = getattr(engine, "tracer", None)
        try:
            for task_id in tracer.open_tasks if tracer is not None else []:
                tracer.marker(task_id, "aborted", error=f"{type(e).__name__}: {e}"[:500])
                _traces(engine, out, task_id)
        except OSError:
            pass  # the parent is gone; the original error is what matters
        raise


def _serve(engine: Engine, inbox: "queue.Queue[Any]", out: BinaryIO) -> None:
    while True:
        block = not engine.has_work()
        try:
            while True:
                msg = inbox.get(block=block)
                block = False
                if msg is _EOF or not _handle(msg, engine, out):
                    return
        except queue.Empty:
            pass
        if engine.has_work():
            for o in engine.step():
                if engine.is_leader or o.finished:
                    _emit(out, _chunk(o))
                if o.finished:
                    _traces(engine, out, o.request_id)


def _load(args: argparse.Namespace, out: BinaryIO) -> Engine:
    time.sleep(load_delay_s())  # a test hook, 0 unless set
    if args.engine == "llama_cpp":
        from skulk.engine.llama_load import load_llama_engine

        return load_llama_engine(args, lambda frame: _emit(out, frame))
    import mlx.core as mx

    from skulk.engine.embed import EmbedEngine, is_embedding_model_dir
    from skulk.engine.generate import Engine as MlxEngine
    from skulk.engine.loading import load_shard

    group = _group_once(args, out)
    shard = TypeAdapter(ShardMetadata).validate_json(args.shard_json) if args.shard_json else None

    def progress(done: int, total: int) -> None:
        _emit(out, frames.Loading(layers_loaded=done, total_layers=total))

    if is_embedding_model_dir(args.model_dir):  # every rank holds the whole (small) encoder
        rank, world = (group.rank(), group.size()) if group is not None else (0, 1)
        embedder = EmbedEngine.load(args.model_dir, rank=rank, world_size=world, on_progress=progress)
        _emit(out, frames.Ready(rank=rank, world_size=world, start_layer=0, end_layer=None,
                                active_memory=mx.get_active_memory()))
        return embedder  # type: ignore[return-value]  # same driving surface as Engine
    loaded = load_shard(args.model_dir, shard, group, on_progress=progress)
    engine = MlxEngine(loaded, max_concurrent=args.max_concurrent, context_limit=args.context_limit,
                    prefill_step=args.prefill_step)
    start, end = (shard.start_layer, shard.end_layer) if shard else (0, None)
    _emit(out, frames.Ready(rank=loaded.rank, world_size=loaded.world_size, start_layer=start, end_layer=end,
                            active_memory=mx.get_active_memory()))
    return engine


def _fatal(out: BinaryIO, exit_code: int, code: str | None, message: str) -> int:
    sys.stderr.write(f"skulk worker: fatal {code}: {message}\n")
    try:
        _emit(out, frames.Fatal(code=code, message=message))
    except OSError:
        pass  # the reader is gone already
    return exit_code


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    out = _protocol_stdout()
    _watch_parent()
    if args.cpus:
        pin_to_cpus({int(c) for c in args.cpus.split(",")})
    code = 0
    try:
        engine = PausableEngine(lambda: _load(args, out))
        inbox: queue.Queue[Any] = queue.Queue()
        threading.Thread(target=_read_stdin, args=(inbox,), name="stdin", daemon=True).start()
        serve(engine, inbox, out)
    except RingPeerLost as e:
        code = _fatal(out, EXIT_RING_LOST, e.code, e.message)
    except GroupConnectTimeout as e:
        code = _fatal(out, EXIT_CONNECT_TIMEOUT, e.code, e.message)
    except Exception as e:  # the runner reports it; nothing else can act on it here
        code = _fatal(out, EXIT_OTHER, type(e).__name__, str(e))
    sys.stderr.flush()
    # os._exit: tearing down a ring group whose peer is gone can block in its socket threads.
    os._exit(code)


if __name__ == "__main__":
    main()
