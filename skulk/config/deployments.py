"""Deployment knobs, cluster-wide and live: the crash-loop breaker, lease warnings, preemption."""

from pydantic import Field

from skulk.config.section import ConfigSection


class RunnerPolicySettings(ConfigSection):
    max_restarts: int = Field(
        3, ge=0, le=64,
        description="Runner crashes of one deployment within restart_window_seconds after which the "
        "deployment stops as failed (with the last error) instead of being placed again. A "
        "deployment may set its own max_restarts. Applies live.",
    )
    restart_window_seconds: float = Field(
        300.0, gt=0, le=7 * 24 * 3600,
        description="The window, in seconds, over which a deployment's runner crashes are counted. "
        "Applies live.",
    )


class DeploymentSettings(ConfigSection):
    expiry_warning_seconds: float = Field(
        300.0, ge=0, le=7 * 24 * 3600,
        description="How long before a deployment's lease ends the master raises the lease-expiring "
        "warning (capped to the lease itself). Applies live.",
    )
    preempt_idle_seconds: float | None = Field(
        60.0, ge=0, le=7 * 24 * 3600,
        description="A deployment whose next instance does not fit may stop instances of lower-priority "
        "deployments idle (no request) this long; they come back once memory allows. null: never "
        "preempt. Applies live.",
    )
