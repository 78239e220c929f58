"""Which inference engines and compute backends this node can run, without importing them.

Names: `mlx` plus `mlx-metal` | `mlx-cuda` | `mlx-cpu`; `llama_cpp` plus `llama_cpp-cpu` and one
entry per GPU backend library shipped in the llama-cpp-python build (`llama_cpp-cuda`, ...).
"""

import functools
import importlib.metadata
import importlib.util
import platform
import sys
from pathlib import Path

# ggml backend libraries as llama-cpp-python installs them -> our backend names
_GGML_BACKENDS = {"cuda": "cuda", "hip": "rocm", "vulkan": "vulkan", "metal": "metal", "sycl": "sycl",
                  "opencl": "opencl", "blas": "blas"}


def _installed(module: str) -> Path | None:
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _has_dist(name: str) -> bool:
    try:
        importlib.metadata.distribution(name)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def mlx_engines() -> list[str]:
    if _installed("mlx") is None:
        return []
    if sys.platform == "darwin" and platform.machine() == "arm64":
        return ["mlx", "mlx-metal"]
    return ["mlx", "mlx-cuda" if _has_dist("mlx-cuda") else "mlx-cpu"]


def llama_engines(package_dir: Path | None = None) -> list[str]:
    root = package_dir if package_dir is not None else _installed("llama_cpp")
    if root is None or not root.is_dir():
        return []
    names = ["llama_cpp", "llama_cpp-cpu"]
    libs = {p.name for p in (root / "lib").glob("*ggml*")} if (root / "lib").is_dir() else set()
    for lib, backend in _GGML_BACKENDS.items():
        if any(f"ggml-{lib}" in name for name in libs):
            names.append(f"llama_cpp-{backend}")
    return names


@functools.cache
def read_engines() -> tuple[str, ...]:
    """Cached: what is installed does not change while the node runs."""
    return tuple(mlx_engines() + llama_engines())
