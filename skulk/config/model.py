"""The Settings model: every configuration knob, defined once with its description.

The descriptions feed the YAML example, the env-variable table and docs/configuration.md,
so write them for an operator reading the example file.
"""

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from skulk.config.routes import CAPABILITY_PREFIX, ModelRoute, check_routes  # noqa: F401  (re-exported)

from skulk.config.deployments import DeploymentSettings, RunnerPolicySettings  # noqa: F401  (re-exported)
from skulk.config.devices import DevicesSettings
from skulk.config.section import ConfigSection
from skulk.config.warm_cache import WarmCacheSettings

InferenceEngine = Literal["auto", "mlx", "llama_cpp"]
KvCacheBackend = Literal["default", "mlx_quantized", "turboquant", "turboquant_adaptive", "optiq"]


class ClusterSettings(ConfigSection):
    namespace: str = Field(
        "skulk-default",
        description="Cluster isolation key: nodes only talk to peers with the same namespace.",
    )
    secret: str | None = Field(
        None, min_length=1,
        description="Shared cluster secret: only nodes with the same secret (and namespace) can "
        "connect. Make one with `skulk secret`. Never shown by GET /config nor synced to other "
        "nodes (null = no secret: any machine on the network can join).",
    )
    secret_file: Path | None = Field(
        None,
        description="File holding the cluster secret (whitespace around it is ignored; ~ is "
        "expanded); read at start when secret is not set.",
    )


class DiscoverySettings(ConfigSection):
    mdns: bool = Field(True, description="Find peers on the local network with mDNS.")


class DefaultModelSettings(ConfigSection):
    model_id: str = Field(
        "HuggingFaceTB/SmolLM2-135M-Instruct",
        description="Hugging Face repo id of the model offered when nothing else is placed.",
    )
    auto_place: bool = Field(
        True, description="Place the default model automatically once the cluster is up."
    )


class StoreDownloadSettings(ConfigSection):
    allow_hf_fallback: bool = Field(
        True,
        description="When a model is not in the store, have the store host download it from "
        "Hugging Face (false = fail, for air-gapped clusters).",
    )


class StagingSettings(ConfigSection):
    enabled: bool = Field(
        True,
        description="Copy models to local disk before loading (false = load straight from "
        "the store path).",
    )
    node_cache_path: Path = Field(
        Path("~/.skulk/staging"), description="Local staging directory (~ is expanded)."
    )
    cleanup_on_deactivate: bool = Field(
        True, description="Evict staged models that no running instance uses any more."
    )
    staging_keep_recent_gb: float = Field(
        40.0,
        ge=0,
        description="GB of recently used, idle staged models kept when evicting "
        "(0 = evict as soon as a model is deactivated).",
    )


class StagingOverride(ConfigSection):
    """A partial StagingSettings: only the keys given replace the base section's values."""

    enabled: bool | None = None
    node_cache_path: Path | None = None
    cleanup_on_deactivate: bool | None = None
    staging_keep_recent_gb: float | None = Field(None, ge=0)


class NodeOverride(ConfigSection):
    staging: StagingOverride = Field(
        default_factory=StagingOverride, description="Staging keys to override on this node."
    )


class ModelStoreSettings(ConfigSection):
    enabled: bool = Field(True, description="Master switch for the shared model store.")
    store_host: str = Field(
        description="Hostname (case-insensitive, short and .local forms match) or libp2p node "
        "id of the node that hosts the store.",
        examples=["mac-studio.local"],
    )
    store_http_host: str | None = Field(
        None, description="Address workers use to reach the store over HTTP (null = store_host)."
    )
    store_port: int = Field(58080, ge=1, le=65535, description="Store HTTP port.")
    store_path: str = Field(
        description="Store root directory on the store host.", examples=["/Volumes/models"]
    )
    download: StoreDownloadSettings = Field(
        default_factory=StoreDownloadSettings, description="How missing models are fetched."
    )
    staging: StagingSettings = Field(
        default_factory=StagingSettings, description="Local staging of models from the store."
    )
    node_overrides: dict[str, NodeOverride] = Field(
        default_factory=dict,
        description="Per-node overrides keyed by hostname or node id, e.g. "
        "{my-laptop: {staging: {staging_keep_recent_gb: 10}}}.",
    )

    def staging_for(self, *node_keys: str) -> StagingSettings:
        """Staging settings for a node known by these keys (hostname, node id); first match wins."""
        override = next(
            (self.node_overrides[key] for key in node_keys if key in self.node_overrides), None
        )
        if override is None:
            return self.staging
        changes = override.staging.model_dump(exclude_none=True)
        return StagingSettings.model_validate(self.staging.model_dump() | changes)


class InferenceSettings(ConfigSection):
    engine: InferenceEngine = Field(
        "auto", description="Engine for the auto-placed default model: auto (llama.cpp on a machine "
        "without Metal when the model has a GGUF file, else MLX), mlx, or llama_cpp. An explicit "
        "placement names its own (instance_meta MlxRing or LlamaRpc)."
    )
    kv_cache_backend: KvCacheBackend = Field(
        "default", description="KV cache implementation used for the next model launch."
    )
    max_concurrent_requests: int = Field(
        8, ge=1, description="Requests one model instance generates at the same time."
    )
    max_pending_per_instance: int | None = Field(
        None, ge=1,
        description="Open requests (generating or waiting) one instance accepts; beyond it a request "
        "gets 429 with Retry-After instead of queueing (null = 2 x max_concurrent_requests).",
    )

    @property
    def pending_limit(self) -> int:
        """max_pending_per_instance, or twice the batch cap when unset."""
        return self.max_pending_per_instance or 2 * self.max_concurrent_requests


class LoggingSettings(ConfigSection):
    enabled: bool = Field(False, description="Write structured JSON logs to stdout.")
    ingest_url: str = Field(
        "", description="POST the JSON log lines here too, with enabled (e.g. VictoriaLogs /insert/jsonline)."
    )
    runner_log_max_bytes: int = Field(
        10 * 1024 * 1024, ge=0,
        description="Size at which a runner's log file (logs/runners/ in the node home) rotates; 0 writes none.",
    )
    runner_log_backups: int = Field(3, ge=0, description="Rotated runner log files kept per runner.")
    runner_log_retention_days: int = Field(
        7, description="Days to keep runner log files after their last write (0 or less keeps them forever)."
    )


class TracingSettings(ConfigSection):
    retention_days: int = Field(
        3, description="Days to keep request traces on disk (0 or less keeps them forever)."
    )


class ApiSettings(ConfigSection):
    max_body_bytes: int = Field(
        8 * 1024 * 1024, ge=1024,
        description="Largest HTTP request body accepted; a bigger one gets 413 before it is read.",
    )
    max_prompt_chars: int = Field(
        2_000_000, ge=1, le=8_000_000,
        description="Most characters a generation request may hold across its messages, tools and "
        "stop strings (400 above it). Capped so a request always fits the runner's 64 MiB frame.",
    )
    cors_origins: tuple[str, ...] = Field(
        (),
        description="Web origins (scheme://host[:port]) whose pages may call this API from a "
        "browser; empty = same-origin only. Never '*'.",
        examples=[["https://dashboard.example.com"]],
    )
    request_timeout_seconds: float = Field(
        600.0, gt=0,
        description="Longest a non-streamed generation may take; past it the client gets 504 and the "
        "request is cancelled on its instance.",
    )
    queue_timeout_seconds: float = Field(
        30.0, gt=0,
        description="How long a request waits for an instance of its model to become ready (loading or "
        "warming up) before it gets 503 with Retry-After.",
    )
    stall_timeout_seconds: float = Field(
        120.0, gt=0,
        description="A stream that receives no token for this long ends with a retryable error "
        "(keep-alives go on meanwhile).",
    )
    gateway_enabled: bool = Field(
        True,
        description="Serve inference routes (chat, completions, responses, messages, embeddings, Ollama); "
        "false = they answer 503 \"gateway disabled\" while admin and state routes keep working. Live.",
    )

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = tuple(part.strip() for part in value.split(",") if part.strip())
        if isinstance(value, (list, tuple)) and "*" in value:
            raise ValueError("'*' is not allowed: list the origins that may call the API")
        return value


class AuthSettings(ConfigSection):
    admin_key: str | None = Field(
        None, min_length=16, max_length=512,
        description="An admin API key this node registers with the cluster (its salted hash only). "
        "Stays on this node: never shown by GET /config nor synced (null = none configured).",
    )
    admin_key_file: Path | None = Field(
        None,
        description="File holding the admin API key (whitespace around it is ignored; ~ is "
        "expanded); read at start when admin_key is not set.",
    )


class NotificationSettings(ConfigSection):
    webhook_url: str = Field(
        "",
        description="POST one message per cluster event (deployment ready/failed/paused/woken, "
        "lease expiring/expired, node lost/recovered) to this http(s) URL; a Slack incoming-webhook "
        "URL gets Slack's {text} shape, any other URL a JSON body. Empty = off. Applies live.",
        examples=["https://hooks.slack.com/services/T000/B000/XXXX"],
    )

    @field_validator("webhook_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        value = value.strip()
        scheme, _, rest = value.partition("://")
        if value and (scheme.lower() not in ("http", "https") or not rest or rest[0] in "/?#"):
            raise ValueError("must be an http:// or https:// URL (or empty to turn notifications off)")
        return value


class MetricsHistorySettings(ConfigSection):
    sample_seconds: float = Field(
        10.0, ge=1, le=3600,
        description="Seconds between two samples of this node's CPU, memory, disk, accelerator, "
        "tokens per second and queue depth in its metric history (GET /v1/metrics/history).",
    )
    retention_hours: float = Field(
        48.0, gt=0, le=24 * 366,
        description="Hours of metric history kept in the node home; older samples are pruned "
        "(the store is also capped in size).",
    )


class Settings(ConfigSection):
    """Everything a node is configured with: skulk.yaml < SKULK_* env < command-line flags."""

    node_name: str | None = Field(
        None, description="Human-readable name of this node (null = the machine's hostname)."
    )
    api_host: str = Field("127.0.0.1", description="Interface the HTTP API listens on.")
    api_port: int = Field(52415, ge=1, le=65535, description="HTTP API port.")
    libp2p_host: str = Field("0.0.0.0", description="Interface the peer-to-peer host listens on.")
    libp2p_port: int = Field(
        52416, ge=0, le=65535, description="Peer-to-peer TCP port (0 = any free port)."
    )
    bootstrap_peers: tuple[str, ...] = Field(
        (),
        description="Multiaddrs of peers to dial at startup, e.g. /ip4/10.0.0.2/tcp/52416 "
        "(a YAML list, or comma-separated in env and flags).",
    )
    force_master: bool = Field(False, description="Prefer this node in master elections.")
    no_worker: bool = Field(False, description="Do not run models on this node.")
    no_api: bool = Field(False, description="Do not serve the HTTP API on this node.")
    offline: bool = Field(
        False, description="No Hugging Face lookups; use only models already on disk."
    )
    home: Path | None = Field(
        None,
        description="Node home directory for keys, logs, event logs and models "
        "(null = $SKULK_HOME or ~/.skulk; a relative path is taken from your home directory).",
    )
    verbosity: int = Field(
        0, description="Log detail: 0 normal, higher is chattier, below 0 quieter."
    )
    node_timeout_seconds: float = Field(
        30.0, gt=0, description="Seconds without a heartbeat before a peer is considered gone."
    )
    event_log_min_free_bytes: int = Field(
        2 * 1024**3,
        ge=0,
        description="Free disk space below which the event logs (master and API side) stop writing "
        "and only count events, so they can never fill the disk. Applies live.",
    )
    dashboard_base_path: str = Field(
        "", description="URL prefix the dashboard is served under, e.g. /skulk behind a proxy."
    )
    api: ApiSettings = Field(
        default_factory=ApiSettings, description="Bounds on what the HTTP API accepts."
    )
    cluster: ClusterSettings = Field(
        default_factory=ClusterSettings, description="Which cluster this node belongs to."
    )
    auth: AuthSettings = Field(
        default_factory=AuthSettings,
        description="API keys: once any key exists in the cluster, every API route but /health, "
        "/ready, /node_id and the dashboard's files needs one.",
    )
    discovery: DiscoverySettings = Field(
        default_factory=DiscoverySettings, description="How peers are found."
    )
    default_model: DefaultModelSettings = Field(
        default_factory=DefaultModelSettings, description="The model served out of the box."
    )
    model_store: ModelStoreSettings | None = Field(
        None, description="Shared model store that nodes stage models from (null = disabled)."
    )
    inference: InferenceSettings = Field(
        default_factory=InferenceSettings, description="Model execution."
    )
    logging: LoggingSettings = Field(
        default_factory=LoggingSettings, description="Structured log shipping."
    )
    tracing: TracingSettings = Field(
        default_factory=TracingSettings, description="Request trace files."
    )
    notifications: NotificationSettings = Field(
        default_factory=NotificationSettings, description="Webhook notifications, sent by the master."
    )
    runner: RunnerPolicySettings = Field(
        default_factory=RunnerPolicySettings, description="When a crash-looping deployment is given up on."
    )
    deployments: DeploymentSettings = Field(
        default_factory=DeploymentSettings, description="Deployments and their leases."
    )
    warm_cache: WarmCacheSettings = Field(
        default_factory=WarmCacheSettings, description="Pausing idle deployments and waking them on a request."
    )
    metrics: MetricsHistorySettings = Field(
        default_factory=MetricsHistorySettings,
        description="This node's metric history (per machine, not synced).",
    )
    devices: DevicesSettings = Field(
        default_factory=DevicesSettings,
        description="This machine's accelerators as configured (per machine, not synced).",
    )
    routes: tuple[ModelRoute, ...] = Field(
        (),
        description="Named model routes, cluster-wide and live: a request whose model is a route's "
        "name goes to the first of its models with a ready instance (else the first with any). "
        "E.g. [{name: reasoning, models: [org/big, org/small]}]. Names are unique, without '/', "
        "and capability:<name> routes (capability:text, capability:embedding) exist implicitly. "
        "Set them with PUT /v1/routes.",
    )
    hf_token: str | None = Field(
        None,
        description="Hugging Face token for gated models; stays on this node and is never "
        "shown by GET /config.",
    )

    @field_validator("routes", mode="before")
    @classmethod
    def _routes_from_json(cls, value: Any) -> Any:
        # An env var carries the list as JSON text.
        return json.loads(value) if isinstance(value, str) and value.strip() else value

    @field_validator("routes")
    @classmethod
    def _routes_consistent(cls, value: tuple[ModelRoute, ...]) -> tuple[ModelRoute, ...]:
        return check_routes(value)

    @field_validator("bootstrap_peers", mode="before")
    @classmethod
    def _split_comma_separated(cls, value: Any) -> Any:
        # Env vars and flags carry the list as one "a,b" string.
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value
