"""Errors raised by the networking layer."""

from skulk.errors import Unavailable


class NetError(Unavailable):
    """A network operation failed or timed out (peer unreachable, stream broken)."""
