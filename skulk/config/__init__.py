"""Configuration: skulk.yaml + SKULK_* env + CLI flags -> one frozen Settings model.

This package is the only reader of the config file. It imports only the standard library,
pydantic, pyyaml and skulk.errors.
"""

from skulk.config.fields import ENV_PREFIX, LEGACY_ENV_NAMES, FieldEntry, env_names, iter_fields
from skulk.config.load import DEFAULT_CONFIG_PATH, load_settings
from skulk.config.model import (
    ClusterSettings,
    DefaultModelSettings,
    DiscoverySettings,
    InferenceSettings,
    KvCacheBackend,
    LoggingSettings,
    ModelStoreSettings,
    NodeOverride,
    Settings,
    StagingOverride,
    StagingSettings,
    StoreDownloadSettings,
    TracingSettings,
)
from skulk.config.render import example_yaml, sanitized_yaml_dict
from skulk.config.resolve import NodePaths, resolve_node_name, resolve_paths

__all__ = [
    "DEFAULT_CONFIG_PATH",
    "ENV_PREFIX",
    "LEGACY_ENV_NAMES",
    "ClusterSettings",
    "DefaultModelSettings",
    "DiscoverySettings",
    "FieldEntry",
    "InferenceSettings",
    "KvCacheBackend",
    "LoggingSettings",
    "ModelStoreSettings",
    "NodeOverride",
    "NodePaths",
    "Settings",
    "StagingOverride",
    "StagingSettings",
    "StoreDownloadSettings",
    "TracingSettings",
    "env_names",
    "example_yaml",
    "iter_fields",
    "load_settings",
    "resolve_node_name",
    "resolve_paths",
    "sanitized_yaml_dict",
]
