"""What the election core refuses before a status can take part (pure, like the core).

Election statuses come from the network: a sender may lie about whom it speaks for, or send a
seniority or clock that would make every node follow it for good.
"""

from __future__ import annotations

from skulk.types.election import ElectionMessage
from skulk.types.ids import NodeId

FORCE_MASTER_SENIORITY = 1_000_000
NON_CANDIDATE_SENIORITY = -1
# Honest clocks move by one per round; a jump this large is a broken or hostile peer, and
# adopting it would let a few messages run the clock to its end.
MAX_CLOCK_JUMP = 1 << 32


def refusal(clock: int, message: ElectionMessage, sender: NodeId | None) -> str | None:
    """Why a status is dropped (a fault kind suffix), or None to let it in."""
    if sender is not None and sender != message.proposed_session.master_node_id:
        return "forged_sender"  # a status speaks only for its signer
    if not NON_CANDIDATE_SENIORITY <= message.seniority <= FORCE_MASTER_SENIORITY:
        return "seniority_out_of_range"
    if message.clock < 0 or message.clock > clock + MAX_CLOCK_JUMP:
        return "clock_jump"
    if message.commands_seen < 0 or message.proposed_session.election_clock < 0:
        return "negative_count"
    return None
