"""The two small collectives that keep ranks in lockstep: a control broadcast and token sharing.

The ring backend only sends point to point between neighbours, so a broadcast is an all_sum
where every rank but the root contributes zeros.
"""

from typing import Any

import mlx.core as mx
import numpy as np

from skulk.engine.errors import RingPeerLost

RING_LOST_MARKER = "[ring]"


def is_ring_failure(exc: BaseException) -> bool:
    return isinstance(exc, RuntimeError) and RING_LOST_MARKER in str(exc)


def _all_sum(x: mx.array, group: Any) -> mx.array:
    try:
        out = mx.distributed.all_sum(x, group=group)
        mx.eval(out)
    except RuntimeError as e:
        if is_ring_failure(e):
            raise RingPeerLost(f"ring peer lost: {e}") from e
        raise
    return out


def broadcast_bytes(payload: bytes | None, group: Any, root: int = 0) -> bytes:
    """Root's payload on every rank (others pass None). Costs one tiny all_sum when empty."""
    is_root = group.rank() == root
    size = len(payload or b"") if is_root else 0
    n = int(_all_sum(mx.array([size], dtype=mx.int32), group).item())
    if n == 0:
        return b""
    if is_root:
        buf = mx.array(np.frombuffer(payload or b"", dtype=np.uint8))
    else:
        buf = mx.zeros((n,), dtype=mx.uint8)
    return np.asarray(_all_sum(buf, group)).tobytes()


def share_tokens(tokens: mx.array | None, n: int, group: Any, root: int) -> list[int]:
    """The root's sampled tokens (n,) on every rank; other ranks pass None."""
    if group.rank() == root:
        assert tokens is not None
        x = tokens.astype(mx.int32).reshape(n)
    else:
        x = mx.zeros((n,), dtype=mx.int32)
    return _all_sum(x, group).tolist()


def barrier(group: Any) -> None:
    _all_sum(mx.array([1], dtype=mx.int32), group)
