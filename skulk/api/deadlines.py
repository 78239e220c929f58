"""The deadlines of one generation on the API node.

A non-streamed request must be answered within `api.request_timeout_seconds` (504, and its task is
cancelled); a stream must receive a token at least every `api.stall_timeout_seconds` (its keep-alives
go on meanwhile), or it ends with a retryable error. Times are trio's clock, passed in.
"""

from dataclasses import dataclass

from skulk.config.model import ApiSettings
from skulk.engine.error_codes import error_chunk
from skulk.types.chunks import ErrorChunk

REQUEST_TIMEOUT = "request_timeout"
STREAM_STALLED = "stream_stalled"


def timed_out(seconds: float) -> ErrorChunk:
    # Not retryable: the same request would run out of time again (and failover must not take it).
    return error_chunk(REQUEST_TIMEOUT, f"The request took longer than {seconds:g} s "
                       "(api.request_timeout_seconds) and was cancelled")


def stalled(seconds: float) -> ErrorChunk:
    return error_chunk(STREAM_STALLED, f"No token arrived for {seconds:g} s (api.stall_timeout_seconds); please retry")


@dataclass
class Deadlines:
    request_s: float | None  # None: a stream, judged by its silences instead
    stall_s: float | None  # None: a whole answer, judged by its total time
    started: float
    last_token: float

    @classmethod
    def of(cls, api: ApiSettings, *, stream: bool, now: float) -> "Deadlines":
        if stream:
            return cls(request_s=None, stall_s=api.stall_timeout_seconds, started=now, last_token=now)
        return cls(request_s=api.request_timeout_seconds, stall_s=None, started=now, last_token=now)

    def token(self, now: float) -> None:
        self.last_token = now

    def expired(self, now: float) -> ErrorChunk | None:
        """The error that ends the request now, or None while it is within its deadlines."""
        if self.request_s is not None and now - self.started >= self.request_s:
            return timed_out(self.request_s)
        if self.stall_s is not None and now - self.last_token >= self.stall_s:
            return stalled(self.stall_s)
        return None

    def remaining(self, now: float) -> float:
        """Seconds until the nearest deadline (0 once one passed)."""
        ends = [self.started + self.request_s if self.request_s is not None else None,
                self.last_token + self.stall_s if self.stall_s is not None else None]
        return max(min(e for e in ends if e is not None) - now, 0.0)
