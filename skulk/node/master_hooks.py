"""What the master needs beyond the pure deciders: ids, ring ports, live memory, the catalog."""

import random
from collections.abc import Callable

from skulk.errors import SkulkError
from skulk.master.serving import (
    auto_place_command, decide_cancel_command, decide_embed_text, decide_finish_command,
    decide_generate_text, decide_place_instance, decide_refusal,
)
from skulk.state.apply import apply_event
from skulk.state.telemetry import TelemetryView
from skulk.types import commands as cmd
from skulk.types.ids import new_id
from skulk.types.state import State

AUTO_PLACE_AFTER_S = 5.0  # let joining nodes settle into one session first


def ring_port() -> int:
    """Base of the ring's ports (rank r uses base + r): above Linux's ephemeral range
    (32768-60999), so outgoing connections and OS-assigned ports never take them."""
    return random.randrange(61000, 65500, 16)


class MasterHooks:
    def __init__(self, telemetry: TelemetryView, now: Callable[[], float], liveness_timeout: float,
                 default_card: Callable[[], object | None], auto_place: bool):
        self._telemetry = telemetry
        self._now = now
        self._timeout = liveness_timeout
        self._default_card = default_card
        self._auto_place = auto_place
        self._refused: set[str] = set()  # each instance is widened at most once

    def _live(self):
        return self._telemetry.live(self._now(), self._timeout)

    def node_memory(self):
        return {n: hb.memory for n, hb in self._live().items()}

    def node_names(self):
        return {n: hb.identity.friendly_name for n, hb in self._live().items()}

    def place(self, state: State, c: cmd.PlaceInstance, auto_placed: bool = False) -> list:
        runners = [new_id() for _ in range(max(len(state.topology.nodes), 1))]
        return decide_place_instance(state, c, self.node_memory(), instance_id=new_id(), runner_ids=runners,
                                     port=ring_port(), node_names=self.node_names(), auto_placed=auto_placed)

    async def on_command(self, state: State, command) -> list:
        if isinstance(command, cmd.PlaceInstance):
            return self.place(state, command)
        if isinstance(command, cmd.GenerateText):
            return decide_generate_text(state, command, task_id=new_id())
        if isinstance(command, cmd.EmbedText):
            return decide_embed_text(state, command, task_id=new_id())
        if isinstance(command, cmd.CancelCommand):
            return decide_cancel_command(state, command)
        if isinstance(command, cmd.FinishCommand):
            return decide_finish_command(state, command)
        if isinstance(command, cmd.RefuseInstancePlacement) and command.instance_id not in self._refused:
            self._refused.add(command.instance_id)
            deleted, wider = decide_refusal(state, command)
            try:
                after = apply_event(state, deleted[0]) if deleted else state
                return deleted + (self.place(after, wider) if wider else [])
            except SkulkError:
                return deleted  # nothing wider fits: the reason stays on the deletion
        return []

    def on_reconcile(self, state: State, master_age_s: float) -> list:
        if not self._auto_place or master_age_s < AUTO_PLACE_AFTER_S:
            return []
        card = self._default_card()
        command = auto_place_command(state, card) if card is not None else None
        if command is None or not self.node_memory():
            return []
        try:
            return self.place(state, command, auto_placed=True)
        except SkulkError:
            return []  # not placeable (yet); try again next pass
