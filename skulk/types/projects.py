"""Projects: resource policies that keys belong to, and the usage counters they are judged by."""

from datetime import datetime

from pydantic import Field

from skulk.types.base import WireModel
from skulk.types.priority import Priority

PROJECT_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$"  # becomes a metrics label: short and plain
MAX_PROJECTS = 256
MAX_ALLOWED_MODELS = 256
MAX_USAGE_SERIES = 2 * 1024  # per key and per project; the oldest-touched series goes first
MAX_REJECTIONS = 256  # recent refusals kept for the waiting API nodes to find
LIMIT_BOUND = 10**12


class ProjectPolicy(WireModel):
    """What a project's keys may use, cluster-wide. None means unlimited."""

    name: str = Field(pattern=PROJECT_NAME_PATTERN)
    max_concurrent_requests: int | None = Field(default=None, gt=0, le=LIMIT_BOUND)
    requests_per_minute: int | None = Field(default=None, gt=0, le=LIMIT_BOUND)
    tokens_per_minute: int | None = Field(default=None, gt=0, le=LIMIT_BOUND)
    max_instances: int | None = Field(default=None, gt=0, le=LIMIT_BOUND)
    allowed_models: list[str] | None = Field(default=None, max_length=MAX_ALLOWED_MODELS)
    priority: Priority | None = None  # its keys' requests run at this priority (None: normal) and never above
    created_at: datetime | None = None

    def public(self) -> dict:
        return {"name": self.name, "max_concurrent_requests": self.max_concurrent_requests,
                "requests_per_minute": self.requests_per_minute, "tokens_per_minute": self.tokens_per_minute,
                "max_instances": self.max_instances, "allowed_models": self.allowed_models, "priority": self.priority,
                "created_at": self.created_at.isoformat() if self.created_at else None}


class UsageBucket(WireModel):
    """Counts of one time slice starting at `start` (unix seconds)."""

    start: int
    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    rejections: int = 0


class UsageSeries(WireModel):
    """Rolling usage of one key or project: 1 s buckets for a minute, 1 min for an hour, 1 h for a day,
    and totals since the series began (the /metrics counters)."""

    seconds: tuple[UsageBucket, ...] = ()
    minutes: tuple[UsageBucket, ...] = ()
    hours: tuple[UsageBucket, ...] = ()
    total: UsageBucket = Field(default_factory=lambda: UsageBucket(start=0))
    touched: int = 0  # unix seconds of the last change, for evicting idle series


class Rejection(WireModel):
    """Why the master refused a request; its API node answers it with `status` and these headers."""

    command_id: str
    owner_node: str | None = None
    key_id: str | None = None
    project: str | None = None
    status: int = 429
    reason: str
    limit: int = 0
    remaining: int = 0
    reset_s: int = 0  # seconds until the window has room again
    retry_after_s: int = 0
