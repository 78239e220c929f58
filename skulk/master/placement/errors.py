"""Placement's typed errors: impossible (400) versus not yet known (503, retry shortly)."""

from collections.abc import Mapping

from skulk.errors import BadRequest, Unavailable


class PlacementError(BadRequest):
    """The request cannot be placed on this cluster as it is; the message says why."""

    code = "placement_failed"


class PlacementInfoPendingError(Unavailable):
    """Placement needs telemetry or connectivity that has not arrived yet."""

    code = "placement_info_pending"


def gb(num_bytes: float) -> str:
    """Bytes as the GB figure messages show (GiB, like Memory.in_gb), two decimals."""
    return f"{float(num_bytes) / 1024**3:.2f}"


def node_label(node_id: str, names: Mapping[str, str] | None) -> str:
    """A node as a person reads it: 'friendly-name (id)' when a name is known."""
    name = (names or {}).get(node_id)
    return f"{name} ({node_id})" if name and name != node_id else node_id
