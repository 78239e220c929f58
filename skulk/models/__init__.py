"""Model catalogue (cards) and model directories: find, convert, download, validate.

Importing this package is cheap: mlx is imported only when a GGUF is converted, and
huggingface_hub only when something is downloaded.
"""

from skulk.models.atomic import build_dir_atomically
from skulk.models.cards import ModelCatalog, builtin_cards_dir, card_from_model_dir, card_to_toml
from skulk.models.resolve import (
    HUB_ALLOW_PATTERNS,
    download_from_hub,
    ensure_model_dir,
    find_model_dir,
    install_from_package,
)
from skulk.models.validate import ModelDirInvalid, require_valid_model_dir, validate_model_dir

DEFAULT_MODEL_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"

__all__ = [
    "DEFAULT_MODEL_ID",
    "HUB_ALLOW_PATTERNS",
    "ModelCatalog",
    "ModelDirInvalid",
    "build_dir_atomically",
    "builtin_cards_dir",
    "card_from_model_dir",
    "card_to_toml",
    "download_from_hub",
    "ensure_model_dir",
    "find_model_dir",
    "install_from_package",
    "require_valid_model_dir",
    "validate_model_dir",
]


def __getattr__(name: str):
    # The converter imports mlx (~1 s); load it only when someone asks for it.
    if name == "convert_gguf_to_mlx":
        from skulk.models.gguf_convert import convert_gguf_to_mlx

        return convert_gguf_to_mlx
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
