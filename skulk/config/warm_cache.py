"""The warm cache's settings: when idle deployments pause and how much they may keep warm."""

from pydantic import Field

from skulk.config.section import ConfigSection


class WarmCacheSettings(ConfigSection):
    keep_alive_seconds: int | None = Field(
        None, ge=0, le=366 * 24 * 3600,
        description="Pause a deployment after this many seconds without a request (its runners free "
        "their memory; the weights stay staged for a fast wake). A deployment's own keep_alive_seconds "
        "wins. Empty or 0: never pause. Applies live.",
    )
    max_ram_gb: float | None = Field(
        None, ge=0, le=1 << 20,
        description="Host memory, per node, that paused deployments' weights may keep warm; over it the "
        "least recently used paused deployment is dropped to cold (its runners stop). Empty: no cap.",
    )
    busy_guard_seconds: float = Field(
        30.0, ge=0, le=24 * 3600,
        description="Never pause a deployment used within this many seconds (or with a request in flight).",
    )
