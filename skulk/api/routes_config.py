"""GET/PUT /config: this node's skulk.yaml, validated by the config package, written atomically."""

import inspect
import os
import types
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

from starlette.requests import Request
from starlette.responses import JSONResponse

from skulk.api.routing import RouteSpec
from skulk.api.validation import parse_json_body
from skulk.config import DEFAULT_CONFIG_PATH, iter_fields, load_settings, sanitized_yaml_dict
from skulk.config.render import default_value, keep_secrets, without_secrets
from skulk.config.sources import read_yaml_file
from skulk.config.sync import LIVE_KEYS, changed_keys, needs_restart
from skulk.config.sync import validate_file_values as _validate
from skulk.config.sync import write_config_file as write_atomically
from skulk.errors import BadRequest, ConfigError, SkulkError


def config_path() -> Path:
    """./skulk.yaml in the node's working directory, the file load_settings reads."""
    return Path.cwd() / DEFAULT_CONFIG_PATH


def _read_file(path: Path) -> dict[str, Any]:
    return read_yaml_file(path, str(path)) if path.exists() else {}


def _effective(port: Any, path: Path) -> tuple[dict[str, Any], str]:
    """The running node's settings when the port exposes them, else file + this process's env
    (command-line flags are then not reflected); and which of the two it is."""
    settings = getattr(port, "settings", None)
    source = "node"
    if settings is None:
        settings, source = load_settings(path if path.exists() else None, os.environ), "file+env"
    doc = sanitized_yaml_dict(settings)
    doc["has_hf_token"] = bool(settings.hf_token)
    return doc, source


async def get_config(request: Request) -> JSONResponse:
    path = config_path()
    body: dict[str, Any] = {"config": {}, "configPath": str(path), "fileExists": path.exists(),
                            "effective": {}, "effectiveSource": None, "fields": field_table(), "error": None}
    try:
        body["config"] = without_secrets(_read_file(path))
        body["effective"], body["effectiveSource"] = _effective(request.app.state.cluster, path)
    except SkulkError as exc:  # a broken file is shown, not a 500: the page is how you fix it
        body["error"] = exc.message
    return JSONResponse(body)


def _new_values(body: Any) -> dict[str, Any]:
    if isinstance(body, dict) and set(body) == {"config"}:
        body = body["config"]
    if not isinstance(body, dict):
        raise ConfigError("The config must be a JSON object of skulk.yaml keys", param="config")
    return dict(body)


async def put_config(request: Request) -> JSONResponse:
    try:
        values = _new_values(parse_json_body(await request.body()))
    except BadRequest as exc:  # unparsable: this route answers 422 naming `config`
        raise ConfigError(f"Invalid JSON body: {exc}", param="config") from exc
    path = config_path()
    try:
        old_file = _read_file(path)
    except SkulkError:
        old_file = {}  # a broken file is being replaced
    values = keep_secrets(values, old_file)  # write-only: the page never sees them
    new_settings = _validate(values)
    old_settings = _settings_or_none(old_file)
    changed = changed_keys(old_settings, new_settings)
    write_atomically(path, values)
    apply_live = getattr(request.app.state.cluster, "apply_live_settings", None)
    if callable(apply_live):
        apply_live(new_settings)  # node-local live keys (the event-log floor) never come back by sync
    await _broadcast(request.app.state.cluster, without_secrets(values))
    restart = needs_restart(changed)
    shown = ", ".join(restart[:6]) + (f" and {len(restart) - 6} more" if len(restart) > 6 else "")
    message = f"Saved {path}." + (f" Restart the node to apply: {shown}." if restart else "")
    return JSONResponse({"success": True, "message": message, "requiresRestart": bool(restart),
                         "changedKeys": changed, "restartKeys": restart})


def _settings_or_none(values: dict[str, Any]) -> Any:
    try:
        return _validate(values)
    except ConfigError:
        return None


async def _broadcast(port: Any, values: dict[str, Any]) -> None:
    # Cluster-wide sync is optional on the port; a node without it just keeps its own file.
    broadcast = getattr(port, "broadcast_config", None)
    if callable(broadcast):
        result = broadcast(values)
        if inspect.isawaitable(result):
            await result


def field_table() -> list[dict[str, Any]]:
    """Every config key with its kind, default and description, so the page can build a form."""
    rows = []
    for entry in iter_fields():
        kind, nullable, options = _kind_of(entry.info.annotation, entry.section is not None)
        rows.append({
            "key": entry.dotted, "kind": kind, "nullable": nullable, "options": options,
            "description": entry.info.description or "", "required": entry.info.is_required(),
            "default": None if entry.section is not None else default_value(entry),
            "env": entry.env_name, "live": entry.dotted.startswith(LIVE_KEYS),
        })
    return rows


def _kind_of(annotation: Any, is_section: bool) -> tuple[str, bool, list[Any] | None]:
    if is_section:
        return "section", get_origin(annotation) in (Union, types.UnionType), None
    nullable = False
    if get_origin(annotation) in (Union, types.UnionType):
        members = [a for a in get_args(annotation) if a is not type(None)]
        nullable, annotation = len(members) < len(get_args(annotation)), members[0]
    if get_origin(annotation) is Literal:
        return "enum", nullable, list(get_args(annotation))
    if get_origin(annotation) in (tuple, list):
        return "list", nullable, None
    if get_origin(annotation) is dict:
        return "map", nullable, None
    simple = {bool: "boolean", int: "integer", float: "number", Path: "path"}
    return simple.get(annotation, "string"), nullable, None


ROUTES = [
    RouteSpec("GET", "/config", get_config, "This node's skulk.yaml (without hf_token) and its keys", "config"),
    RouteSpec("PUT", "/config", put_config, "Validate and write this node's skulk.yaml", "config",
              status_codes=(200, 422)),
]
