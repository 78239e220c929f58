"""Election messages (gossiped) and results (local only)."""

from skulk.types.base import WireModel
from skulk.types.ids import SessionId


class ElectionMessage(WireModel):
    clock: int
    seniority: int
    proposed_session: SessionId
    commands_seen: int

    def rank_key(self) -> tuple[int, int, int, str]:
        """Total order used to pick a winner: clock, seniority, commands seen, node id."""
        return (self.clock, self.seniority, self.commands_seen, self.proposed_session.master_node_id)


class ElectionResult(WireModel):
    session_id: SessionId
    won_clock: int
    is_new_master: bool
