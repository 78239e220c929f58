"""Errors of the model store and staging; each message is what the operator gets to read."""

from skulk.errors import NotFound, SkulkError, Unavailable


class StoreNotConfigured(Unavailable):
    code = "store_not_configured"

    def __init__(self, message: str = "Store not configured"):
        super().__init__(message)


class StoreUnreachable(Unavailable):
    """The store host did not answer; the message starts with "Store unreachable"."""

    code = "store_unreachable"


class ModelNotInStore(NotFound):
    code = "model_not_in_store"


class StagingFailed(SkulkError):
    """Copying a model from the store failed (bad bytes, disk full, a store error)."""

    status = 502
    code = "staging_failed"
