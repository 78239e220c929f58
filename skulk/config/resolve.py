"""Values that depend on the machine: the node's name and where its files live on disk."""

import os
import socket
from collections.abc import Mapping
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from skulk.config.model import Settings

DEFAULT_HOME_NAME = ".skulk"


class NodePaths(BaseModel):
    """Every file and directory a node owns, derived from its home directory."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    home: Path
    identity_key_file: Path
    logs_dir: Path
    runner_logs_dir: Path  # one stderr log file per runner
    event_log_dir: Path
    models_dir: Path
    custom_model_cards_dir: Path
    traces_dir: Path
    extra_model_dirs: tuple[Path, ...]  # read-only model search dirs from SKULK_MODELS_PATH


def resolve_paths(
    settings: Settings, env: Mapping[str, str], user_home: Path | None = None
) -> NodePaths:
    """Home from settings.home, else SKULK_HOME, else ~/.skulk; relative paths hang off
    `user_home` (default: the current user's home directory)."""
    user_home = user_home if user_home is not None else Path.home()
    raw_home = settings.home or (Path(env["SKULK_HOME"]) if env.get("SKULK_HOME") else None)
    home = _under(user_home, raw_home) if raw_home else user_home / DEFAULT_HOME_NAME
    models_override = env.get("SKULK_MODELS_DIR")
    return NodePaths(
        home=home,
        identity_key_file=home / "node_id.key",
        logs_dir=home / "logs",
        runner_logs_dir=home / "logs" / "runners",
        event_log_dir=home / "event_log",
        models_dir=_under(user_home, Path(models_override)) if models_override else home / "models",
        custom_model_cards_dir=home / "custom_model_cards",
        traces_dir=home / "traces",
        extra_model_dirs=_search_dirs(env.get("SKULK_MODELS_PATH", ""), user_home),
    )


def resolve_node_name(settings: Settings, hostname: str | None = None) -> str:
    """The configured node name, else this machine's hostname."""
    if settings.node_name:
        return settings.node_name
    return hostname if hostname is not None else socket.gethostname()


def _under(user_home: Path, path: Path) -> Path:
    # Skulk has always read relative SKULK_HOME / SKULK_MODELS_DIR from the user's home.
    if path.parts and path.parts[0] == "~":
        path = user_home.joinpath(*path.parts[1:])
    elif str(path).startswith("~"):
        path = path.expanduser()  # ~otheruser/...
    return path if path.is_absolute() else user_home / path


def _search_dirs(colon_separated: str, user_home: Path) -> tuple[Path, ...]:
    return tuple(
        _under(user_home, Path(part)) for part in colon_separated.split(os.pathsep) if part
    )
