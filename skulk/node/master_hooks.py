"""What the master's deciders need from this node, gathered per decision: live memory and
names from telemetry, fresh ids, a ring port, the default model card."""

import random
from collections.abc import Callable

from skulk.master.dispatch import DecideContext
from skulk.state.telemetry import TelemetryView
from skulk.types.ids import new_id


def ring_port() -> int:
    """Base of the ring's ports (rank r uses base + r): above Linux's ephemeral range
    (32768-60999), so outgoing connections and OS-assigned ports never take them."""
    return random.randrange(61000, 65500, 16)


class MasterContext:
    """Called by the master before each decision; the master adds sender, time and its memory."""

    def __init__(self, telemetry: TelemetryView, now: Callable[[], float], liveness_timeout: float,
                 default_card: Callable[[], object | None], auto_place: bool, engine: str = "auto", *,
                 pending_limit: Callable[[], int] | None = None, local_config: Callable[[], dict] | None = None):
        self._telemetry = telemetry
        self._now = now
        self._timeout = liveness_timeout
        self._default_card = default_card
        self._auto_place = auto_place
        self._engine = engine
        self._pending_limit = pending_limit  # live: PUT /config may change it
        self._local_config = local_config  # the deployment knobs until the cluster config names them

    def __call__(self) -> DecideContext:
        live = self._telemetry.live(self._now(), self._timeout)
        return DecideContext(
            node_memory={n: hb.memory for n, hb in live.items()},
            node_names={n: hb.identity.friendly_name for n, hb in live.items()},
            new_id=new_id, ring_port=ring_port(), auto_place=self._auto_place,
            default_card=self._default_card() if self._auto_place else None,
            node_engines={n: tuple(hb.system.engines) for n, hb in live.items()}, engine=self._engine,
            **({"pending_limit": self._pending_limit()} if self._pending_limit is not None else {}),
            no_worker=frozenset(n for n, hb in live.items() if not hb.system.has_worker),
            node_devices={n: tuple(hb.system.devices) for n, hb in live.items()},
            **({"local_config": self._local_config()} if self._local_config is not None else {}),
        )
