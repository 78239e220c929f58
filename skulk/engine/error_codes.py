"""The one mapping from a request's error code to the HTTP status and retry flag its client sees.

Codes come from the engine (a refused request), the runner supervisor (the process went away),
the worker (params never came) and the API node (session change, lost node). Every ErrorChunk a
stream can end with is built here, so the same code always answers the same way.
"""

from skulk.types.chunks import ErrorChunk

# code -> (HTTP status, retryable: the same request can succeed if sent again)
ERROR_CODES: dict[str, tuple[int, bool]] = {
    # the request's own fault
    "context_length_exceeded": (400, False),
    "invalid_request": (400, False),
    "invalid_sampling_params": (400, False),
    "not_a_generation_model": (400, False),
    "not_an_embedding_model": (400, False),
    # cancelled on purpose (the client went away, or an operator cancelled it)
    "cancelled": (499, False),
    # the serving side went away: another try can land on a live runner or instance
    "runner_failed": (500, True),
    "runner_shutdown": (500, True),
    "runner_unavailable": (500, True),
    "ring_peer_lost": (500, True),
    "instance_lost": (500, True),
    "instance_deleted": (500, True),
    "stream_closed": (500, True),
    "session_changed": (503, True),
    "task_not_created": (503, True),
    "request_params_missing": (503, True),
    # deadlines on the API node: a whole answer past its time would run out again; a stall may not
    "request_timeout": (504, False),
    "stream_stalled": (504, True),
}
DEFAULT = (500, False)  # an engine bug or an unknown code: not the client's fault, not known to pass


def status_of(code: str | None) -> tuple[int, bool]:
    return ERROR_CODES.get(code or "", DEFAULT)


def error_chunk(code: str | None, message: str | None = None) -> ErrorChunk:
    """The ErrorChunk that ends a stream with `code`."""
    status, retryable = status_of(code)
    code = code or "runner_error"
    return ErrorChunk(error_type=code, error_message=message or code, status_code=status, retryable=retryable)
