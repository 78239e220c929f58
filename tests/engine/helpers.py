"""Test fixtures for the engine: a tiny random llama with its own tokenizer, and a driver for
worker_main processes (one per rank) that always reaps what it starts."""

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
WORDS = (
    "the quick brown fox jumps over lazy dog hello world how are you today Paris is capital of "
    "France one two three four five six seven eight nine ten red green blue stop go alpha beta "
    "gamma delta river mountain ocean cloud"
).split()
N_LAYERS = 6
WEIGHT_SCALE = 3.0  # random weights this large give varied text instead of one repeated token


def _build_tokenizer(model_dir: Path) -> int:
    """A byte-level BPE over ASCII words (no raw high bytes, so every token decodes cleanly)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    corpus = [" ".join(WORDS[i:] + WORDS[:i]) for i in range(len(WORDS))]
    corpus.append("0123456789 ,.!?;:'\"()-_/")
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=300, special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"], show_progress=False
    )
    tok.train_from_iterator(corpus, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>")
    fast.chat_template = CHAT_TEMPLATE
    fast.save_pretrained(model_dir)
    return len(fast)


def build_tiny_model(model_dir: Path, *, context: int = 256) -> Path:
    """config.json + model.safetensors (fp32) + tokenizer files for a 6-layer llama."""
    import mlx.core as mx
    from mlx.utils import tree_flatten
    from mlx_lm.models import llama

    model_dir.mkdir(parents=True, exist_ok=True)
    vocab = _build_tokenizer(model_dir)
    config = dict(
        model_type="llama", hidden_size=64, num_hidden_layers=N_LAYERS, intermediate_size=128,
        num_attention_heads=4, num_key_value_heads=2, rms_norm_eps=1e-5, vocab_size=vocab,
        tie_word_embeddings=False, max_position_embeddings=context,
    )
    mx.random.seed(0)
    model = llama.Model(llama.ModelArgs(**config))
    weights = {k: v * WEIGHT_SCALE if v.ndim == 2 else v for k, v in tree_flatten(model.parameters())}
    mx.save_safetensors(str(model_dir / "model.safetensors"), weights)
    (model_dir / "config.json").write_text(json.dumps(config))
    return model_dir


def shard_json(kind: str, rank: int, world: int, start: int, end: int) -> str:
    from skulk.types.ids import Memory
    from skulk.types.models import ModelCard
    from skulk.types.shards import PipelineShardMetadata, TensorShardMetadata

    card = ModelCard(
        model_id="test/tiny-llama", n_layers=N_LAYERS, hidden_size=64, supports_tensor=True,
        tasks=["TextGeneration"], storage_size=Memory(in_bytes=1), num_key_value_heads=2,
        num_attention_heads=4,
    )
    cls = PipelineShardMetadata if kind == "pipeline" else TensorShardMetadata
    shard = cls(model_card=card, device_rank=rank, world_size=world, start_layer=start,
                end_layer=end, n_layers=N_LAYERS)
    return shard.model_dump_json(by_alias=True)


def chat(text: str, **kw: Any) -> dict[str, Any]:
    return {"model": "test/tiny-llama", "input": [{"role": "user", "content": text}], **kw}


class Worker:
    """One worker_main process; frames from its stdout land in a queue."""

    def __init__(self, argv: list[str], env: dict[str, str], log: Path):
        from skulk.engine.framing import read_frame

        self.log = log
        self._log_file = open(log, "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "skulk.engine.worker_main", *argv],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log_file, env=env, cwd=ROOT,
        )
        self.inbox: queue.Queue[dict[str, Any] | None] = queue.Queue()

        def pump() -> None:
            while (msg := read_frame(self.proc.stdout)) is not None:
                self.inbox.put(msg)
            self.inbox.put(None)

        threading.Thread(target=pump, daemon=True).start()

    def send(self, msg: dict[str, Any]) -> None:
        from skulk.engine.framing import write_frame

        write_frame(self.proc.stdin, msg)

    def expect(self, op: str, timeout: float) -> dict[str, Any]:
        """The next frame with this op (others are skipped); fails at the deadline or EOF."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {op!r} from worker within {timeout}s; log:\n{self.stderr()}")
            try:
                msg = self.inbox.get(timeout=left)
            except queue.Empty:
                continue
            if msg is None:
                raise AssertionError(f"worker closed stdout before {op!r}; log:\n{self.stderr()}")
            if msg.get("op") == op:
                return msg
            if msg.get("op") == "fatal":
                raise AssertionError(f"worker failed: {msg}; log:\n{self.stderr()}")

    def collect(self, request_id: str, timeout: float) -> list[dict[str, Any]]:
        """Chunks of one request up to and including the finished one."""
        chunks = []
        deadline = time.monotonic() + timeout
        while not chunks or not chunks[-1]["finished"]:
            msg = self.expect("chunk", max(0.01, deadline - time.monotonic()))
            if msg["id"] == request_id:
                chunks.append(msg)
        return chunks

    def collect_many(self, ids: list[str], timeout: float) -> dict[str, list]:
        """Chunks per request until every one of ids has finished (followers send the final one only)."""
        got: dict[str, list] = {i: [] for i in ids}
        deadline = time.monotonic() + timeout
        while not all(got[i] and got[i][-1]["finished"] for i in ids):
            msg = self.expect("chunk", max(0.01, deadline - time.monotonic()))
            if msg["id"] in got:
                got[msg["id"]].append(msg)
        return got

    def exit_code(self, timeout: float) -> int:
        return self.proc.wait(timeout=timeout)

    def stderr(self) -> str:
        self._log_file.flush()
        return self.log.read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        """Kill by PID and reap; safe to call twice."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)
        self._log_file.close()


def start_ranks(
    model_dir: Path, tmp: Path, kind: str, world: int, *,
    only_ranks: list[int] | None = None, deadline_s: float = 60, extra: list[str] | None = None,
) -> list[Worker]:
    """world worker processes on 127.0.0.1, each a shard of the tiny model (or only some ranks)."""
    from skulk.engine.distributed import free_local_ports, plan_affinity, rank_env, write_hostfile

    entries = [f"127.0.0.1:{p}" for p in free_local_ports(world)]
    hostfile = write_hostfile(tmp / f"hosts-{kind}-{world}.json", entries)
    cpus = plan_affinity(world)
    bounds = [round(i * N_LAYERS / world) for i in range(world + 1)]
    workers: list[Worker] = []
    try:
        for rank in only_ranks if only_ranks is not None else range(world):
            start, end = (bounds[rank], bounds[rank + 1]) if kind == "pipeline" else (0, N_LAYERS)
            argv = ["--model-dir", str(model_dir), "--connect-deadline", str(deadline_s),
                    "--cpus", ",".join(map(str, sorted(cpus[rank]))), *(extra or [])]
            if world > 1:
                argv += ["--shard-json", shard_json(kind, rank, world, start, end)]
            env = rank_env(hostfile, rank, world, threads=1)
            workers.append(Worker(argv, env, tmp / f"{kind}-{world}-rank{rank}.log"))
    except BaseException:
        stop_all(workers)
        raise
    return workers


def stop_all(workers: list[Worker]) -> None:
    for w in workers:
        w.stop()
