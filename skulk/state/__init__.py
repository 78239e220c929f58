"""Pure state folding: apply(state, indexed_event) and read-only queries."""

from skulk.state.apply import apply, apply_event
from skulk.state.seed import seed_state_for_new_session

__all__ = ["apply", "apply_event", "seed_state_for_new_session"]
