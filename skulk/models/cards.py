"""Model cards from TOML files: the built-in set shipped in the package, plus custom cards.

Custom cards live in the node's data home, `custom_model_cards/<org>--<name>.toml`, are
marked `is_custom`, and win over a built-in card with the same model id.
"""

import importlib.resources
import json
import logging
import tomllib
from pathlib import Path
from typing import Any

from skulk.errors import BadRequest, ConfigError, NotFound
from skulk.models.atomic import write_file_atomically
from skulk.types.ids import Memory, ModelId, model_dir_name, validate_model_id
from skulk.types.models import ModelCard

log = logging.getLogger(__name__)


def builtin_cards_dir() -> Path:
    """The directory of TOML cards shipped inside the skulk package."""
    return Path(str(importlib.resources.files("skulk").joinpath("resources", "model_cards")))


def load_card_file(path: Path, *, is_custom: bool) -> ModelCard:
    """Parse one TOML card; raises OSError or ValueError (incl. pydantic's) on a bad file."""
    with open(path, "rb") as fh:
        data = tomllib.load(fh)
    data["is_custom"] = is_custom  # where the file lives decides, not the file
    return ModelCard.model_validate(data)


def load_cards_dir(directory: Path | None, *, is_custom: bool) -> dict[ModelId, ModelCard]:
    """Every valid `*.toml` card in `directory` (sorted; first file wins per model id).

    Invalid files are skipped with a log line so one bad card never hides the others.
    """
    cards: dict[ModelId, ModelCard] = {}
    if directory is None or not directory.is_dir():
        return cards
    for path in sorted(directory.glob("*.toml")):
        try:
            card = load_card_file(path, is_custom=is_custom)
        except (OSError, ValueError) as exc:  # pydantic's ValidationError is a ValueError
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            log.warning("skipping invalid model card %s: %s", path, reason)
            continue
        if card.model_id in cards:
            log.warning("skipping duplicate model card %s for %s", path, card.model_id)
            continue
        cards[card.model_id] = card
    return cards


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        # A JSON string with ASCII escapes is also a valid TOML basic string.
        return json.dumps(value, ensure_ascii=True)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} to a TOML card")


def card_to_toml(card: ModelCard) -> str:
    """The card as TOML with snake_case keys; None fields and `is_custom` are left out."""
    data = card.model_dump(by_alias=False, exclude_none=True, exclude={"is_custom"})
    scalars = [f"{k} = {_toml_value(v)}" for k, v in data.items() if not isinstance(v, dict)]
    tables = []
    for key, value in data.items():
        if isinstance(value, dict):
            rows = "".join(f"{k} = {_toml_value(v)}\n" for k, v in value.items() if v is not None)
            tables.append(f"\n[{key}]\n{rows}")
    return "\n".join(scalars) + "\n" + "".join(tables)


class ModelCatalog:
    """Built-in cards plus custom cards, custom first. Reads both directories eagerly."""

    def __init__(self, builtin_dir: Path | None = None, custom_dir: Path | None = None):
        self.builtin_dir = builtin_cards_dir() if builtin_dir is None else Path(builtin_dir)
        self.custom_dir = None if custom_dir is None else Path(custom_dir)
        self._builtin: dict[ModelId, ModelCard] = {}
        self._custom: dict[ModelId, ModelCard] = {}
        self.reload()

    def reload(self) -> None:
        self._builtin = load_cards_dir(self.builtin_dir, is_custom=False)
        self._custom = load_cards_dir(self.custom_dir, is_custom=True)

    def get(self, model_id: ModelId) -> ModelCard | None:
        return self._custom.get(model_id) or self._builtin.get(model_id)

    def require(self, model_id: ModelId) -> ModelCard:
        card = self.get(model_id)
        if card is None:
            raise NotFound(
                f"no model card for {model_id!r}", param="model_id", code="model_not_found"
            )
        return card

    def all(self) -> list[ModelCard]:
        merged = {**self._builtin, **self._custom}
        return [merged[k] for k in sorted(merged)]

    def _custom_path(self, model_id: ModelId) -> Path:
        if self.custom_dir is None:
            raise ConfigError("this catalog has no custom card directory", param="custom_dir")
        validate_model_id(model_id)  # refuses anything that could leave custom_dir (a 400)
        if "/" not in model_id:
            raise BadRequest(f"model id {model_id!r} is not of the form org/name", param="model_id")
        return self.custom_dir / f"{model_dir_name(model_id)}.toml"

    def add_custom(self, card: ModelCard) -> ModelCard:
        """Save `card` as a custom card (replacing any custom card with the same id)."""
        path = self._custom_path(card.model_id)
        card = card.model_copy(update={"is_custom": True})
        write_file_atomically(path, card_to_toml(card).encode())
        self._custom[card.model_id] = card
        return card

    def delete_custom(self, model_id: ModelId) -> bool:
        """Remove a custom card; a built-in card with the same id shows again. False if none."""
        path = self._custom_path(model_id)
        existed = self._custom.pop(model_id, None) is not None
        try:
            path.unlink()
        except FileNotFoundError:
            return existed
        return True


def _text_config(config: dict[str, Any]) -> dict[str, Any]:
    """Multimodal configs nest the language model's numbers under `text_config`."""
    nested = config.get("text_config")
    return {**config, **nested} if isinstance(nested, dict) else config


def _first_int(config: dict[str, Any], *keys: str) -> int | None:
    for key in keys:
        value = config.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


def _quantization_label(config: dict[str, Any]) -> str:
    quant = config.get("quantization") or config.get("quantization_config") or {}
    bits = quant.get("bits") if isinstance(quant, dict) else None
    return f"{bits}bit" if isinstance(bits, int) else ""


def _tasks_for(directory: Path, config: dict[str, Any]) -> list[str]:
    architectures = config.get("architectures") or []
    generative = any(
        a.endswith(("ForCausalLM", "LMHeadModel", "ForConditionalGeneration"))
        for a in architectures
    )
    if (directory / "modules.json").exists() or (architectures and not generative):
        return ["TextEmbedding"]
    return ["TextGeneration"]


def card_from_model_dir(model_id: ModelId, path: Path) -> ModelCard:
    """Build a card from a Hugging Face layout directory (config.json + safetensors)."""
    config_path = Path(path) / "config.json"
    try:
        config = _text_config(json.loads(config_path.read_text()))
    except (OSError, ValueError) as exc:
        raise NotFound(f"cannot read {config_path} for {model_id!r}: {exc}") from exc
    n_layers = _first_int(config, "num_hidden_layers", "n_layers", "num_layers", "n_layer")
    hidden = _first_int(config, "hidden_size", "d_model", "n_embd", "dim")
    if n_layers is None or hidden is None:
        raise BadRequest(f"{config_path} lacks num_hidden_layers/hidden_size", param="model_id")
    heads = _first_int(config, "num_attention_heads", "n_head", "n_heads")
    kv_heads = _first_int(config, "num_key_value_heads", "n_kv_heads")
    size = sum(p.stat().st_size for p in Path(path).rglob("*.safetensors"))
    return ModelCard(
        model_id=model_id,
        n_layers=n_layers,
        hidden_size=hidden,
        supports_tensor=heads is not None and kv_heads is not None,
        tasks=_tasks_for(Path(path), config),
        storage_size=Memory(in_bytes=size),
        num_key_value_heads=kv_heads if kv_heads is not None else heads,
        num_attention_heads=heads,
        family=str(config.get("model_type", "")),
        quantization=_quantization_label(config),
        context_length=_first_int(config, "max_position_embeddings", "n_positions") or 0,
    )
