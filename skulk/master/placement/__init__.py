"""The master's placement planner: pure functions from cluster facts to one new instance."""

from skulk.master.placement.errors import PlacementError, PlacementInfoPendingError
from skulk.master.placement.layers import allocate_layers
from skulk.master.placement.place import place_instance
from skulk.master.placement.previews import PlacementPreview, placement_previews

__all__ = [
    "PlacementError",
    "PlacementInfoPendingError",
    "PlacementPreview",
    "allocate_layers",
    "place_instance",
    "placement_previews",
]
