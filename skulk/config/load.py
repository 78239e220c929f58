"""load_settings: skulk.yaml < SKULK_* env < overrides, validated once into Settings.

Every failure becomes a ConfigError whose message is one line naming the file, env variable
or flag, and the key, so the CLI can print it as is and exit.
"""

import difflib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from skulk.config.fields import iter_fields
from skulk.config.model import Settings
from skulk.config.render import SECRET_PATHS
from skulk.config.sources import (
    KeyPath,
    Origins,
    deep_merge,
    env_layer,
    override_layer,
    read_yaml_file,
)
from skulk.errors import ConfigError

DEFAULT_CONFIG_PATH = Path("skulk.yaml")
LEGACY_CONFIG_NAME = "exo.yaml"
_MAX_SHOWN_INPUT = 60


def load_settings(
    config_path: Path | None,
    env: Mapping[str, str],
    overrides: Mapping[str, Any] | None = None,
    *,
    override_labels: Mapping[str, str] | None = None,
) -> Settings:
    """Settings from the file (None = ./skulk.yaml if present), env and overrides.

    `overrides` holds nested dicts or dotted keys; `override_labels` names where each dotted
    key came from (a flag such as "--api-port") for error messages.
    """
    file_values, file_label = _file_layer(config_path)
    env_values, env_origins = env_layer(env)
    override_values, override_origins = override_layer(overrides or {}, override_labels or {})
    merged = deep_merge(deep_merge(file_values, env_values), override_values)
    _drop_null_sections(merged)
    try:
        settings = Settings.model_validate(merged)
    except ValidationError as exc:
        raise _to_config_error(exc, env_origins | override_origins, file_label) from None
    return _with_secret_from_file(settings, env_origins | override_origins, file_label)


def _with_secret_from_file(settings: Settings, origins: Origins, file_label: str | None) -> Settings:
    """cluster.secret read from cluster.secret_file, unless a secret is given directly."""
    cluster = settings.cluster
    if cluster.secret is not None or cluster.secret_file is None:
        return settings
    path = cluster.secret_file.expanduser()
    where = _origin_of(("cluster", "secret_file"), origins) or (
        f"{file_label}: cluster.secret_file" if file_label else "cluster.secret_file")
    try:
        secret = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise ConfigError(f"{where}: cannot read {path}: {reason}", param="cluster.secret_file") from None
    if not secret:
        raise ConfigError(f"{where}: {path} is empty", param="cluster.secret_file")
    return settings.model_copy(update={"cluster": cluster.model_copy(update={"secret": secret})})


def _file_layer(config_path: Path | None) -> tuple[dict[str, Any], str | None]:
    if config_path is None:
        if not DEFAULT_CONFIG_PATH.exists():
            legacy = DEFAULT_CONFIG_PATH.with_name(LEGACY_CONFIG_NAME)
            if legacy.exists():
                raise ConfigError(
                    f"found {legacy} but no {DEFAULT_CONFIG_PATH}: rename it to "
                    f"{DEFAULT_CONFIG_PATH.name}",
                    param="config",
                )
            return {}, None  # zero-config
        config_path = DEFAULT_CONFIG_PATH
    label = str(config_path)
    if not config_path.exists():
        raise ConfigError(f"{label}: config file not found", param="config")
    return read_yaml_file(config_path, label), label


def _drop_null_sections(values: dict[str, Any]) -> None:
    # "cluster:" with every key commented out parses as null; treat it as an empty section.
    for entry in iter_fields():
        if entry.section is None or entry.optional_section:
            continue
        parent = _lookup(values, entry.path[:-1])
        if isinstance(parent, dict) and entry.path[-1] in parent and parent[entry.path[-1]] is None:
            del parent[entry.path[-1]]


def _lookup(values: Any, path: KeyPath) -> Any:
    for part in path:
        if not isinstance(values, dict):
            return None
        values = values.get(part)
    return values


def _to_config_error(exc: ValidationError, origins: Origins, file_label: str | None) -> ConfigError:
    errors = exc.errors(include_url=False)
    first = errors[0]
    loc = tuple(first["loc"])
    key = _dotted(loc)
    if first["type"] == "extra_forbidden":
        detail = f"unknown key '{key}'{_suggestion(loc)}"
    elif loc in SECRET_PATHS:
        detail = _message_of(first)  # never echo a secret back into a log or a response
    else:
        detail = _message_of(first) + _shown_input(first)
    source = _origin_of(loc, origins)
    if source is not None:
        message = f"{source}: {detail}"
    else:
        where = f"{file_label}: " if file_label else ""
        unknown_key = first["type"] == "extra_forbidden"  # the detail names the key already
        message = where + detail if unknown_key else f"{where}{key}: {detail}"
    if len(errors) > 1:
        more = len(errors) - 1
        message += f" (and {more} more problem{'s' if more > 1 else ''})"
    return ConfigError(message, param=key)


def _message_of(error: Mapping[str, Any]) -> str:
    # Our own validators' messages arrive as "Value error, <text>"; show only the text.
    if error["type"] == "value_error" and "error" in error.get("ctx", {}):
        return str(error["ctx"]["error"])
    return str(error["msg"])


def _origin_of(loc: tuple[Any, ...], origins: Origins) -> str | None:
    """The env variable or flag that set this key or the section holding it, if any."""
    for end in range(len(loc), 0, -1):
        origin = origins.get(tuple(str(part) for part in loc[:end]))
        if origin is not None:
            return origin
    return None


def _dotted(loc: tuple[Any, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _shown_input(error: Mapping[str, Any]) -> str:
    if error["type"] == "missing":
        return ""
    shown = repr(error["input"])
    if len(shown) > _MAX_SHOWN_INPUT:
        shown = shown[: _MAX_SHOWN_INPUT - 3] + "..."
    return f" (got {shown})"


def _suggestion(loc: tuple[Any, ...]) -> str:
    """' (did you mean 'x.y'?)' when the unknown key is a likely typo of a real one."""
    parent = tuple(str(part) for part in loc[:-1])
    siblings = [e.path[-1] for e in iter_fields() if e.path[:-1] == parent]
    close = difflib.get_close_matches(str(loc[-1]), siblings, n=1, cutoff=0.75)
    if not close:
        return ""
    return f" (did you mean '{'.'.join(parent + (close[0],))}'?)"
