"""One GGUF model and one llama.cpp context with a KV stream per sequence, over the low-level
`llama_cpp` bindings. Everything the llama engine asks of llama.cpp goes through here.

Each request owns a sequence id; with `kv_unified` off every sequence has its own KV stream of
`n_ctx_seq` cells, so a request's attention never sees (or waits on) its neighbours' cells.
"""

import ctypes
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import llama_cpp as ll

from skulk.errors import SkulkError

GGUF_MAGIC = b"GGUF"
_PIECE_BUF = 256


class GgufLoadError(SkulkError):
    """The GGUF file is missing, not a GGUF, or llama.cpp refused it."""

    status = 500
    code = "gguf_load_failed"


class KvCacheFull(SkulkError):
    """llama_decode found no room for the batch in the KV cache."""

    status = 503
    code = "kv_cache_full"


@dataclass(frozen=True)
class BatchToken:
    token: int
    pos: int
    seq: int
    logits: bool


def check_gguf_file(path: Path) -> None:
    """Fail early, naming the file, before llama.cpp prints its own reasons on stderr."""
    try:
        with open(path, "rb") as fh:
            magic = fh.read(4)
    except OSError as exc:
        raise GgufLoadError(f"GGUF file {path} cannot be read: {exc.strerror or exc}") from None
    if magic != GGUF_MAGIC:
        raise GgufLoadError(f"{path} is not a GGUF file (magic {magic!r})")


def _quiet_logs() -> None:
    """llama.cpp logs every tensor on load; keep only warnings and errors on stderr."""

    @ll.llama_log_callback
    def log(level: int, text: bytes, _user: Any) -> None:
        if level in (3, 4):  # GGML_LOG_LEVEL_WARN, GGML_LOG_LEVEL_ERROR
            os.write(2, text)

    _quiet_logs.callback = log  # type: ignore[attr-defined]  # ctypes must keep it alive
    ll.llama_log_set(log, ctypes.c_void_p())


class LlamaModel:
    """A loaded model and its context; not thread-safe (the runner's one loop drives it)."""

    def __init__(self, path: Path, *, n_seq: int, n_ctx_seq: int, n_threads: int,
                 n_batch: int = 512, n_gpu_layers: int | None = None):
        path = Path(path)
        check_gguf_file(path)
        _quiet_logs()
        ll.llama_backend_init()
        mparams = ll.llama_model_default_params()
        if n_gpu_layers is not None:  # else llama.cpp's default: every layer on a GPU build, none on CPU
            mparams.n_gpu_layers = n_gpu_layers
        self.model = ll.llama_model_load_from_file(str(path).encode(), mparams)
        if not self.model:
            raise GgufLoadError(f"llama.cpp could not load the GGUF file {path} (corrupt or unsupported)")
        self.path = path
        self.vocab = ll.llama_model_get_vocab(self.model)
        self.n_ctx_train = int(ll.llama_model_n_ctx_train(self.model))
        self.n_seq = n_seq
        self.n_ctx_seq = min(n_ctx_seq, self.n_ctx_train) if self.n_ctx_train > 0 else n_ctx_seq
        self.n_batch = max(n_batch, n_seq)
        cparams = ll.llama_context_default_params()
        cparams.n_ctx = self.n_ctx_seq * n_seq
        cparams.n_batch = cparams.n_ubatch = self.n_batch
        cparams.n_seq_max = n_seq
        cparams.n_threads = cparams.n_threads_batch = n_threads
        cparams.kv_unified = False
        cparams.no_perf = True
        self.ctx = ll.llama_init_from_model(self.model, cparams)
        if not self.ctx:
            ll.llama_model_free(self.model)
            raise GgufLoadError(f"llama.cpp could not create a context for {path}")
        self.n_ctx_seq = int(ll.llama_n_ctx(self.ctx)) // n_seq
        self.memory = ll.llama_get_memory(self.ctx)
        self._batch = ll.llama_batch_init(self.n_batch, 0, 1)

    # ----- vocabulary -----

    def tokenize(self, text: str, *, add_special: bool = False, parse_special: bool = True) -> list[int]:
        data = text.encode("utf-8")
        room = len(data) + 8
        buf = (ll.llama_token * room)()
        n = ll.llama_tokenize(self.vocab, data, len(data), buf, room, add_special, parse_special)
        if n < 0:  # more tokens than bytes + 8 (never for byte-level vocabularies): retry exact
            room = -n
            buf = (ll.llama_token * room)()
            n = ll.llama_tokenize(self.vocab, data, len(data), buf, room, add_special, parse_special)
        return list(buf[:n])

    def piece(self, token: int) -> bytes:
        """The token's text bytes; special tokens (EOS, role markers) render as nothing."""
        buf = ctypes.create_string_buffer(_PIECE_BUF)
        n = ll.llama_token_to_piece(self.vocab, token, buf, _PIECE_BUF, 0, False)
        if n < 0:
            buf = ctypes.create_string_buffer(-n)
            n = ll.llama_token_to_piece(self.vocab, token, buf, -n, 0, False)
        return buf.raw[:n]

    def token_text(self, token: int) -> str:
        """The token as the chat template names it (special tokens rendered)."""
        buf = ctypes.create_string_buffer(_PIECE_BUF)
        n = ll.llama_token_to_piece(self.vocab, token, buf, _PIECE_BUF, 0, True)
        return buf.raw[: max(n, 0)].decode("utf-8", errors="replace")

    def is_eog(self, token: int) -> bool:
        return bool(ll.llama_vocab_is_eog(self.vocab, token))

    @property
    def eos(self) -> int:
        return int(ll.llama_vocab_eos(self.vocab))

    @property
    def bos(self) -> int:
        return int(ll.llama_vocab_bos(self.vocab))

    @property
    def n_vocab(self) -> int:
        return int(ll.llama_vocab_n_tokens(self.vocab))

    def chat_template(self) -> str | None:
        raw = ll.llama_model_chat_template(self.model, None)
        return raw.decode("utf-8") if raw else None

    def size_bytes(self) -> int:
        return int(ll.llama_model_size(self.model))

    # ----- compute -----

    def decode(self, tokens: list[BatchToken]) -> None:
        """One llama_decode of up to n_batch tokens; logits stay readable by batch index."""
        if len(tokens) > self.n_batch:
            raise ValueError(f"batch of {len(tokens)} tokens exceeds n_batch={self.n_batch}")
        b = self._batch
        for i, t in enumerate(tokens):
            b.token[i] = t.token
            b.pos[i] = t.pos
            b.n_seq_id[i] = 1
            b.seq_id[i][0] = t.seq
            b.logits[i] = 1 if t.logits else 0
        b.n_tokens = len(tokens)
        rc = ll.llama_decode(self.ctx, b)
        if rc == 1:
            raise KvCacheFull("no room in the KV cache for this batch")
        if rc != 0:
            raise RuntimeError(f"llama_decode failed with code {rc}")

    def forget(self, seq: int) -> None:
        """Free every KV cell of a sequence (a finished or cancelled request)."""
        ll.llama_memory_seq_rm(self.memory, seq, -1, -1)

    def sample(self, sampler: Any, batch_index: int) -> int:
        return int(ll.llama_sampler_sample(sampler, self.ctx, batch_index))

    def close(self) -> None:
        if getattr(self, "ctx", None):
            ll.llama_batch_free(self._batch)
            ll.llama_free(self.ctx)
            ll.llama_model_free(self.model)
            self.ctx = None


def make_sampler(spec: Any, n_vocab: int, history: list[int]) -> Any:
    """A llama.cpp sampler chain for a SamplingSpec, primed with the prompt for penalties."""
    chain = ll.llama_sampler_chain_init(ll.llama_sampler_chain_default_params())
    add = lambda s: ll.llama_sampler_chain_add(chain, s)  # noqa: E731
    repeat = spec.repetition_penalty or 1.0
    freq, present = spec.frequency_penalty or 0.0, spec.presence_penalty or 0.0
    if repeat != 1.0 or freq or present:
        add(ll.llama_sampler_init_penalties(n_vocab, spec.repetition_context_size, repeat, freq, present))
    if spec.greedy:
        add(ll.llama_sampler_init_greedy())
    else:
        if spec.top_k > 0:
            add(ll.llama_sampler_init_top_k(spec.top_k))
        if spec.top_p < 1.0:
            add(ll.llama_sampler_init_top_p(spec.top_p, 1))
        if spec.min_p > 0.0:
            add(ll.llama_sampler_init_min_p(spec.min_p, 1))
        add(ll.llama_sampler_init_temp(spec.temperature))
        add(ll.llama_sampler_init_dist(spec.seed & 0xFFFFFFFF))
    for token in history[-max(spec.repetition_context_size, 1):]:
        ll.llama_sampler_accept(chain, token)
    return chain


def free_sampler(sampler: Any) -> None:
    ll.llama_sampler_free(sampler)
