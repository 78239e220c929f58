"""Skulk's error hierarchy. Imports nothing of ours."""


class SkulkError(Exception):
    """Base of every error Skulk raises on purpose. `status` maps it to HTTP."""

    status: int = 500
    code: str | None = None

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code


class BadRequest(SkulkError):
    status = 400


class NotFound(SkulkError):
    status = 404


class Conflict(SkulkError):
    status = 409


class Unavailable(SkulkError):
    """Retryable: the cluster is not ready (info pending, session changing)."""

    status = 503


class ConfigError(SkulkError):
    """A bad configuration value; `param` names the key."""

    status = 422


class CodecError(SkulkError):
    """Undecodable bytes from the network or disk."""

    status = 400
