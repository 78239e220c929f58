"""Runner statuses, reported by each node for the runners it supervises."""

from skulk.types.base import TaggedModel, tagged_union


class RunnerIdle(TaggedModel):
    pass


class RunnerConnecting(TaggedModel):
    pass


class RunnerConnected(TaggedModel):
    pass


class RunnerLoading(TaggedModel):
    layers_loaded: int = 0
    total_layers: int = 0


class RunnerLoaded(TaggedModel):
    pass


class RunnerWarmingUp(TaggedModel):
    pass


class RunnerReady(TaggedModel):
    pass


class RunnerRunning(TaggedModel):
    pass


class RunnerPaused(TaggedModel):
    """Alive but holding no model: its deployment is paused (warm cache); a resume reloads in place."""

    rss_bytes: int | None = None  # the runner process's resident memory once paused, when known


class RunnerShuttingDown(TaggedModel):
    pass


class RunnerShutdown(TaggedModel):
    pass


class RunnerFailed(TaggedModel):
    error_message: str | None = None


RunnerStatus = tagged_union(
    RunnerIdle, RunnerConnecting, RunnerConnected, RunnerLoading, RunnerLoaded,
    RunnerWarmingUp, RunnerReady, RunnerRunning, RunnerShuttingDown, RunnerShutdown,
    RunnerFailed, RunnerPaused,
)
