"""Errors the engine raises on purpose. They subclass skulk.errors so one place maps them to HTTP."""

from skulk.errors import BadRequest, SkulkError


class ContextLengthExceeded(BadRequest):
    """prompt tokens + max tokens do not fit the instance's context limit."""

    code = "context_length_exceeded"


class InvalidSamplingParams(BadRequest):
    code = "invalid_sampling_params"


class ShardingUnsupported(SkulkError):
    """The model class cannot be split the way the shard asks (e.g. no `shard()` for Tensor)."""

    status = 422
    code = "sharding_unsupported"


class GroupConnectTimeout(SkulkError):
    """A ring peer never answered before the connect deadline."""

    status = 503
    code = "group_connect_timeout"


class RingPeerLost(SkulkError):
    """A rank of this instance died or dropped its connection mid-generation."""

    status = 503
    code = "ring_peer_lost"
