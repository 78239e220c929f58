"""Which skulk.yaml keys are shared by the whole cluster, and how a node merges them in.

A node's file mixes cluster-wide keys (inference, logging, model_store, ...) with keys that only
make sense for that machine (ports, name, home) and the local-only secrets (hf_token,
cluster.secret). Only the first kind is replicated; a node keeps its own values for the rest.
"""

import os
from pathlib import Path
from typing import Any

import yaml

from skulk.atomic_files import write_file_atomically
from skulk.config.load import load_settings
from skulk.config.render import SECRET_KEYS, SECRET_PATHS, without_secrets
from skulk.errors import ConfigError

# Top-level keys that describe one machine: never replicated, never overwritten by the cluster.
# How a node finds its cluster (cluster, discovery) stays local too, so a sync can never cut a
# node off; so does the event-log floor, which depends on the node's own disk.
NODE_LOCAL_KEYS = frozenset({
    "node_name", "api_host", "api_port", "libp2p_host", "libp2p_port", "bootstrap_peers",
    "force_master", "no_worker", "no_api", "home", "verbosity", "dashboard_base_path",
    "cluster", "discovery", "event_log_min_free_bytes", "auth", "metrics", "devices",
}) | SECRET_KEYS

# Keys a running node picks up without a restart (the next model launch, the log sink, the
# trace janitor, the HF token, the event-log floor); a change to any other key needs one.
LIVE_KEYS = ("inference.kv_cache_backend", "logging.", "tracing.", "hf_token", "event_log_min_free_bytes",
             "notifications.", "runner.max_restarts", "runner.restart_window_seconds", "deployments.",
             "inference.max_pending_per_instance", "inference.max_concurrent_requests", "api.gateway_enabled",
             "api.request_timeout_seconds", "api.queue_timeout_seconds", "api.stall_timeout_seconds", "routes",
             "warm_cache.")


def cluster_part(values: dict[str, Any]) -> dict[str, Any]:
    """The keys of a skulk.yaml mapping that every node of the cluster shares (never a secret)."""
    return without_secrets({k: v for k, v in values.items() if k not in NODE_LOCAL_KEYS})


def merge_cluster_part(local: dict[str, Any], cluster: dict[str, Any]) -> dict[str, Any]:
    """This node's file with its cluster-wide keys replaced by `cluster` (the cluster is
    authoritative for them, so a key it dropped is dropped here too)."""
    kept = {k: v for k, v in local.items() if k in NODE_LOCAL_KEYS}
    return {**kept, **cluster_part(cluster)}


def needs_restart(changed_keys: list[str]) -> list[str]:
    return [k for k in changed_keys if not k.startswith(LIVE_KEYS)]


def changed_keys(old: Any, new: Any) -> list[str]:
    """Dotted keys whose effective value differs (every key counts when `old` is None)."""
    new_flat = _flatten(new.model_dump(mode="json"))
    if old is None:
        return sorted(new_flat)
    old_flat = _flatten(old.model_dump(mode="json"))
    return sorted(k for k in set(old_flat) | set(new_flat) if old_flat.get(k) != new_flat.get(k))


def _flatten(values: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(values, dict) or not values:
        return {prefix: values}
    flat: dict[str, Any] = {}
    for key, value in values.items():
        flat.update(_flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return flat


def write_config_file(path: Path, values: dict[str, Any]) -> None:
    """Replace the file atomically and durably, so readers never see half of it."""
    text = yaml.safe_dump(values, sort_keys=False, allow_unicode=True, default_flow_style=False)
    # The file may hold the HF token or the cluster secret, so it stays private to this user.
    write_file_atomically(path, text, mode=0o600 if _holds_secret(values) else 0o644)


def _holds_secret(values: dict[str, Any]) -> bool:
    for keys in SECRET_PATHS:
        node: Any = values
        for key in keys:
            node = node.get(key) if isinstance(node, dict) else None
        if node:
            return True
    return False


def validate_file_values(values: dict[str, Any]) -> Any:
    """Settings from these file values alone; a ConfigError names the offending key."""
    # Given as overrides over an empty file, so an error starts with the dotted key it is about;
    # a missing key has no override to name, so drop the empty file's label instead.
    try:
        return load_settings(Path(os.devnull), {}, values)
    except ConfigError as exc:
        raise ConfigError(exc.message.removeprefix(f"{os.devnull}: "), param=exc.param) from None
