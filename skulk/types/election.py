"""Election messages (gossiped) and results (local only)."""

from pydantic import Field

from skulk.types.base import WireModel
from skulk.types.ids import SessionId

# Integers a JSON peer can carry exactly; the election core applies the tighter bounds.
MAX_WIRE_INT = 2**53 - 1


class ElectionMessage(WireModel):
    clock: int = Field(ge=0, le=MAX_WIRE_INT)
    seniority: int = Field(ge=-1, le=MAX_WIRE_INT)
    proposed_session: SessionId
    commands_seen: int = Field(ge=0, le=MAX_WIRE_INT)

    def rank_key(self) -> tuple[int, int, int, str]:
        """Total order used to pick a winner: clock, seniority, commands seen, node id."""
        return (self.clock, self.seniority, self.commands_seen, self.proposed_session.master_node_id)


class ElectionResult(WireModel):
    session_id: SessionId
    won_clock: int
    is_new_master: bool
