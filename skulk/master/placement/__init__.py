"""The master's placement planner: pure functions from cluster facts to one new instance."""

from skulk.master.placement.availability import no_worker_nodes, unavailable_nodes
from skulk.master.placement.errors import PlacementError, PlacementInfoPendingError
from skulk.master.placement.layers import allocate_layers
from skulk.master.placement.llama import MULTI_NODE_REFUSAL, auto_instance_meta, card_engines
from skulk.master.placement.offload import devices_of
from skulk.master.placement.place import place_instance
from skulk.master.placement.previews import PlacementPreview, placement_previews

__all__ = [
    "MULTI_NODE_REFUSAL",
    "PlacementError",
    "PlacementInfoPendingError",
    "PlacementPreview",
    "allocate_layers",
    "auto_instance_meta",
    "card_engines",
    "devices_of",
    "no_worker_nodes",
    "place_instance",
    "placement_previews",
    "unavailable_nodes",
]
