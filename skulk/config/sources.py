"""The three layers of configuration as plain nested dicts: the YAML file, env, overrides.

Each layer also reports where its values came from, so an error can name the env variable
or flag that set a bad value rather than only the key.
"""

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from skulk.config.fields import LEGACY_ENV_NAMES, env_names
from skulk.errors import ConfigError

KeyPath = tuple[str, ...]
Origins = dict[KeyPath, str]


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice instead of silently keeping the last one."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} given twice", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def read_yaml_file(path: Path, label: str) -> dict[str, Any]:
    """The file's mapping; an empty file is an empty mapping."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            f"{label}: cannot read config file: {exc.strerror or exc}", param="config"
        ) from exc
    try:
        data = yaml.load(text, Loader=_StrictLoader)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{label}: {_describe_yaml_error(exc)}", param="config") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        kind = type(data).__name__
        raise ConfigError(
            f"{label}: the top level must be a mapping of keys, got a {kind}", param="config"
        )
    return data


def _describe_yaml_error(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
    return " ".join(f"{where}invalid YAML: {problem}".split())


def env_layer(env: Mapping[str, str]) -> tuple[dict[str, Any], Origins]:
    """Values from SKULK_* variables that name a key; every other variable is ignored."""
    layer: dict[str, Any] = {}
    origins: Origins = {}
    # Legacy names first, so the canonical name wins when both are set.
    names = env_names()
    ordered = [n for n in names if n in LEGACY_ENV_NAMES] + [
        n for n in names if n not in LEGACY_ENV_NAMES
    ]
    for name in ordered:
        value = env.get(name)
        if value is None or value == "":  # an empty variable means "not set"
            continue
        path = names[name]
        _set_path(layer, path, value)
        origins[path] = name
    return layer, origins


def override_layer(
    overrides: Mapping[str, Any], labels: Mapping[str, str]
) -> tuple[dict[str, Any], Origins]:
    """Overrides given as nested dicts or dotted keys ("cluster.namespace")."""
    layer: dict[str, Any] = {}
    for key, value in overrides.items():
        _set_path(layer, tuple(key.split(".")), value)
    origins = {path: labels.get(".".join(path), ".".join(path)) for path in _leaf_paths(layer)}
    return layer, origins


def deep_merge(base: Mapping[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    """`top` wins key by key; mappings on both sides are merged rather than replaced."""
    merged = dict(base)
    for key, value in top.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _set_path(target: dict[str, Any], path: KeyPath, value: Any) -> None:
    for part in path[:-1]:
        child = target.get(part)
        if not isinstance(child, dict):
            child = target[part] = {}
        target = child
    existing = target.get(path[-1])
    if isinstance(existing, dict) and isinstance(value, Mapping):
        target[path[-1]] = deep_merge(existing, value)
    else:
        target[path[-1]] = value


def _leaf_paths(layer: Mapping[str, Any], prefix: KeyPath = ()) -> list[KeyPath]:
    paths: list[KeyPath] = []
    for key, value in layer.items():
        if isinstance(value, Mapping) and value:
            paths.extend(_leaf_paths(value, prefix + (key,)))
        else:
            paths.append(prefix + (key,))
    return paths
