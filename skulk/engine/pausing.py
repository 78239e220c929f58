"""A runner's engine that can be paused: the model and its caches are freed, the process stays.

Paused, the process keeps its imports (MLX or llama_cpp), its ring group and the model files in
the page cache (llama.cpp maps the GGUF; MLX reads safetensors), so a resume is a reload from
memory, not a process start. The loader is the same one the first load used.
"""

import gc
import os
from collections.abc import Callable
from typing import Any

Engine = Any


def rss_bytes() -> int | None:
    """This process's resident memory (Linux /proc; None elsewhere)."""
    try:
        with open(f"/proc/{os.getpid()}/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def _free(engine: Engine) -> None:
    model = getattr(engine, "model", None)
    close = getattr(model, "close", None)  # llama.cpp: free the context, KV cache and model
    if callable(close):
        close()


def _clear_mlx_cache() -> None:
    import sys

    mx = sys.modules.get("mlx.core")  # only an MLX runner ever imported it
    if mx is not None:
        mx.clear_cache()


class PausableEngine:
    """Forwards to the loaded engine; `pause()` frees it, `resume()` loads it again."""

    def __init__(self, load: Callable[[], Engine]):
        self._load = load
        self._engine: Engine | None = load()

    @property
    def paused(self) -> bool:
        return self._engine is None

    def pause(self) -> dict[str, Any]:
        """The frame to answer: "paused" with the memory now held, or an error while requests run."""
        if self._engine is None:
            return {"op": "paused", "rss_bytes": rss_bytes()}
        if self._engine.has_work():
            return {"op": "error", "id": None, "code": "runner_busy", "message": "cannot pause with requests in flight"}
        engine, self._engine = self._engine, None
        _free(engine)
        del engine
        gc.collect()
        _clear_mlx_cache()
        return {"op": "paused", "rss_bytes": rss_bytes()}

    def resume(self) -> None:
        """Load again (the loader writes the loading/ready frames); a no-op when not paused."""
        if self._engine is None:
            self._engine = self._load()

    def has_work(self) -> bool:
        return self._engine is not None and self._engine.has_work()

    def __getattr__(self, name: str) -> Any:
        engine = self.__dict__.get("_engine")
        if engine is None:
            raise AttributeError(f"the runner is paused (no model loaded): {name} is unavailable")
        return getattr(engine, name)
