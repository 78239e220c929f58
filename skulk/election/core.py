"""Pure master election (reference §2): inputs and ticks in, broadcasts and results out.

No clock reads and no I/O: the shell feeds `Tick()` every 100 ms plus received messages and
connection updates, and performs the `Broadcast`/`Elected` outputs it gets back.

Where the reference can leave nodes split, a few rules are added (each explained in place):
a connection change during a round restarts it at once if a candidate may be unreachable,
and a join queues a rerun only if the round began before it and did not count the joiner
(the reference always awaits the round, then bumps the clock); an uncounted status for a
round we finished starts a new one and a status behind our clock is answered (the reference
drops both); a round that heard none of our peers is retried once; candidates count once
per sender.

Early end (the reference always waits 3 s): a round ends at the first tick where the nodes
heard at this clock are exactly the present peers plus the nodes our last round heard (less
departed ones), no connection change is settling, and a whole tick passed with no new voice.
In a full mesh those are all the statuses this clock will see, so the winner is the one a
waiting node picks. A silent peer, or a status from a node we did not expect (a partial
mesh), holds the round to its 3 s deadline. A status arriving after an early end was never
counted, so the rule above re-elects, better candidate or not. The rebroadcast goes out at
the early end and again at the old deadline, so a peer that missed our status still gets it
when it did before. A joiner takes no shortcut to the incumbent: it must be counted (a
force-master joiner has to win), and its round ends as early as everyone else's.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Iterable

from skulk.election.bounds import FORCE_MASTER_SENIORITY, NON_CANDIDATE_SENIORITY, refusal
from skulk.election.events import (
    Broadcast,
    CommandSeen,
    Elected,
    Input,
    MessageReceived,
    Output,
    PeerConnectionChanged,
    Refused,
    Tick,
)
from skulk.errors import ConfigError
from skulk.types.election import ElectionMessage, ElectionResult
from skulk.types.ids import NodeId, SessionId

TICK_SECONDS = 0.1
CAMPAIGN_TICKS = 30  # DEFAULT_ELECTION_TIMEOUT, 3.0 s
SETTLE_TICKS = 2  # CONNECTION_SETTLE_DELAY, 0.2 s
# An early end also needs one whole tick without a new voice: statuses of nodes that joined
# the round through a peer trail that peer's by a relay hop.
QUIET_TICKS = 2
# At most one answer to stragglers a second: answering every tick, every node at once, made a
# broadcast storm that slowed gossip further on a loaded machine.
ANSWER_EVERY_TICKS = 10


# State -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Round:
    """A campaign in flight: every message at `clock` seen so far, one per sender."""

    clock: int
    status: ElectionMessage
    candidates: tuple[ElectionMessage, ...]
    started_at: int
    ends_at: int
    heard_at: int  # when the last new participant was heard (the start, at first)
    retry: bool = False  # a retry after a round that heard no peer (retried only once)

    @property
    def participants(self) -> frozenset[NodeId]:
        return frozenset(_sender(m) for m in self.candidates)


@dataclass(frozen=True)
class Settle:
    """Connection updates being coalesced; folded SETTLE_TICKS after the first one."""

    first_seen: int
    updates: tuple[tuple[NodeId, bool], ...]


@dataclass(frozen=True)
class ElectionState:
    node_id: NodeId
    candidate: bool
    seniority: int
    current_session: SessionId
    now: int = 0
    clock: int = 0
    commands_seen: int = 0
    round: Round | None = None
    settle: Settle | None = None
    # Peers that joined during a round started before they did: re-elect unless it counted them.
    rerun_for: frozenset[NodeId] = frozenset()
    peer_counts: tuple[tuple[NodeId, int], ...] = ()
    # The statuses the last finished round counted, ours included (to judge late messages).
    last_candidates: tuple[ElectionMessage, ...] = ()
    answered_at: int = -1  # the tick we last answered a status behind our clock
    # Beyond the present peers, who must speak before a round may end early: nodes our last
    # round counted (maybe reached only through relays) and late senders, less departed ones.
    expected: frozenset[NodeId] = frozenset()
    # The rebroadcast still owed at the deadline of a round that ended early: (tick, status).
    echo: tuple[int, ElectionMessage] | None = None

    @property
    def is_master(self) -> bool:
        return self.current_session.master_node_id == self.node_id

    @property
    def present_peers(self) -> frozenset[NodeId]:
        return frozenset(peer for peer, count in self.peer_counts if count > 0)


# Entry points ----------------------------------------------------------------------------


def start(
    node_id: NodeId, *, force_master: bool = False, candidate: bool = True, initial_clock: int = 0
) -> tuple[ElectionState, list[Output]]:
    """A fresh node: master of its own session (self, initial_clock), confirmed by a zero-length
    round. A restarted node passes a higher clock than last time, so it never re-proposes a
    session id that peers may still hold from its previous life."""
    if force_master and not candidate:
        raise ConfigError(
            "a node cannot be both force-master and a non-candidate", param="force_master"
        )
    if force_master:
        seniority = FORCE_MASTER_SENIORITY
    else:
        seniority = 0 if candidate else NON_CANDIDATE_SENIORITY
    state = ElectionState(
        node_id=node_id,
        candidate=candidate,
        seniority=seniority,
        current_session=SessionId(master_node_id=node_id, election_clock=initial_clock),
    )
    state, outputs = _start_round(state, clock=initial_clock, candidates=(), timeout=0)
    state, more = _elect_winner(state)
    return state, outputs + more


def step(state: ElectionState, event: Input) -> tuple[ElectionState, list[Output]]:
    match event:
        case Tick():
            return _on_tick(state)
        case MessageReceived(message=message, sender=sender):
            reason = refusal(state.clock, message, sender)
            if reason is not None:
                return state, [Refused(reason, message)]
            return _on_message(state, message)
        case PeerConnectionChanged(peer_id=peer, connected=connected):
            return _on_connection(state, peer, connected), []
        case CommandSeen(count=count):
            return replace(state, commands_seen=state.commands_seen + count), []
    raise TypeError(f"not an election input: {event!r}")


def status_message(state: ElectionState, clock: int) -> ElectionMessage:
    """What this node proposes at `clock`: its running session if master, else a new one."""
    if state.is_master:
        proposed = state.current_session
    else:
        proposed = SessionId(master_node_id=state.node_id, election_clock=clock)
    return ElectionMessage(
        clock=clock,
        seniority=state.seniority,
        proposed_session=proposed,
        commands_seen=state.commands_seen,
    )


# Rounds ----------------------------------------------------------------------------------


def _sender(message: ElectionMessage) -> NodeId:
    # A status always proposes a session mastered by its sender (its own or a new one).
    return message.proposed_session.master_node_id


def _with_candidate(
    candidates: tuple[ElectionMessage, ...], message: ElectionMessage
) -> tuple[ElectionMessage, ...]:
    # One entry per sender, so repeats (the end-of-round rebroadcast) don't inflate seniority.
    sender = _sender(message)
    return tuple(c for c in candidates if _sender(c) != sender) + (message,)


def _start_round(
    state: ElectionState,
    *,
    clock: int,
    candidates: tuple[ElectionMessage, ...],
    timeout: int = CAMPAIGN_TICKS,
    retry: bool = False,
) -> tuple[ElectionState, list[Output]]:
    """Abandon any round in flight, add our own status and broadcast it."""
    state = replace(state, clock=clock)
    status = status_message(state, clock)
    new_round = Round(
        clock=clock,
        status=status,
        candidates=_with_candidate(candidates, status),
        started_at=state.now,
        heard_at=state.now,
        ends_at=state.now + timeout,
        retry=retry,
    )
    # Any round that starts now sees the current links, so a queued rerun is satisfied; and
    # its statuses supersede an older round's echo.
    state = replace(state, round=new_round, rerun_for=frozenset(), echo=None)
    return state, [Broadcast(status)]


def _new_round(state: ElectionState) -> tuple[ElectionState, list[Output]]:
    """Our own reason to re-elect: a fresh clock that every peer will adopt."""
    return _start_round(state, clock=state.clock + 1, candidates=())


def _heard_everyone(state: ElectionState) -> bool:
    """Whether exactly the nodes we know can take part have spoken: the round may end early."""
    current = state.round
    if current is None or state.settle is not None:
        return False  # with connection updates pending, the present peers are about to change
    if state.now < current.heard_at + QUIET_TICKS:
        return False
    # A status from a stranger (relayed past a partial mesh) shows our picture is incomplete.
    return current.participants - {state.node_id} == state.present_peers | state.expected


def _end_round(state: ElectionState) -> tuple[ElectionState, list[Output]]:
    current = state.round
    assert current is not None
    if len(current.candidates) == 1 and state.present_peers and not current.retry:
        # Connected, yet no peer spoke: they sit idle at our clock (e.g. we restarted and look
        # like our old self to them). A higher clock makes them take part.
        return _start_round(state, clock=state.clock + 1, candidates=(), retry=True)
    state, outputs = _elect_winner(state)
    if state.rerun_for - current.participants:
        state, more = _new_round(state)  # the reference: await the round, then bump
        return state, outputs + more
    return replace(state, rerun_for=frozenset()), outputs


def _elect_winner(state: ElectionState) -> tuple[ElectionState, list[Output]]:
    current = state.round
    assert current is not None
    winner = max(current.candidates, key=ElectionMessage.rank_key)
    seniority = state.seniority
    if _sender(winner) == state.node_id and state.candidate:
        seniority = max(seniority, len(current.candidates))
    result = ElectionResult(
        session_id=winner.proposed_session,
        won_clock=current.clock,
        is_new_master=winner.proposed_session != state.current_session,
    )
    early = state.now < current.ends_at
    state = replace(
        state,
        round=None,
        seniority=seniority,
        current_session=winner.proposed_session,
        last_candidates=current.candidates,
        expected=current.participants - {state.node_id},
        echo=(current.ends_at, current.status) if early else None,
    )
    # Rebroadcast first, in case a peer missed the opening status.
    return state, [Broadcast(current.status), Elected(result)]


def _on_tick(state: ElectionState) -> tuple[ElectionState, list[Output]]:
    state = replace(state, now=state.now + 1)
    outputs: list[Output] = []
    # Settle before ending: a vanished candidate must cancel the round, not win it.
    if state.settle is not None and state.now >= state.settle.first_seen + SETTLE_TICKS:
        state, more = _settle_connections(state)
        outputs += more
    if state.round is not None and (state.now >= state.round.ends_at or _heard_everyone(state)):
        state, more = _end_round(state)
        outputs += more
    if state.echo is not None and state.now >= state.echo[0]:
        outputs.append(Broadcast(state.echo[1]))
        state = replace(state, echo=None)
    return state, outputs


# Messages --------------------------------------------------------------------------------


def _on_message(
    state: ElectionState, message: ElectionMessage
) -> tuple[ElectionState, list[Output]]:
    if _sender(message) == state.node_id:
        return state, []  # our own broadcast looped back (or a stale one from a past life)
    if message.clock > state.clock:
        return _start_round(state, clock=message.clock, candidates=(message,))
    if message.clock < state.clock:
        return _answer_stale(state)
    if state.round is not None:
        current = state.round
        heard_at = current.heard_at if _sender(message) in current.participants else state.now
        candidates = _with_candidate(current.candidates, message)
        return replace(state, round=replace(current, candidates=candidates, heard_at=heard_at)), []
    if message in state.last_candidates:
        return state, []  # a peer's end-of-round rebroadcast of a status we counted
    winner = max(state.last_candidates, key=ElectionMessage.rank_key, default=None)
    if winner is not None and message.rank_key() < winner.rank_key() and _sender(message) != _sender(winner):
        # It would not have won, so our result stands. Re-electing for every late status is what
        # kept slow-gossip clusters (10 nodes on 2 cores) re-electing without end; should its
        # sender have missed the winner, the winner's answer reaches it, late and outranking.
        return _answer_stale(state) if _sender(winner) == state.node_id else (state, [])
    # The reference drops this too; but its sender is deciding a round we finished without
    # it (a lost or relayed message, a restarted node), so we may disagree: re-elect together,
    # and wait for it this time.
    return _new_round(replace(state, expected=state.expected | {_sender(message)}))


def _answer_stale(state: ElectionState) -> tuple[ElectionState, list[Output]]:
    """Repeat our status to a sender behind our clock (the reference only drops it).

    Otherwise a node that restarted or reconnected unnoticed (its new connections coalesced
    with the old ones) stays on its own session: nobody else has a reason to broadcast.
    """
    if state.answered_at >= 0 and state.now - state.answered_at < ANSWER_EVERY_TICKS:
        return state, []  # one answer a second serves every straggler (each answer reaches all)
    if state.round is not None:
        own = state.round.status
    else:
        own = next(m for m in state.last_candidates if _sender(m) == state.node_id)
    return replace(state, answered_at=state.now), [Broadcast(own)]


# Connections -----------------------------------------------------------------------------


def _on_connection(state: ElectionState, peer: NodeId, connected: bool) -> ElectionState:
    if peer == state.node_id:
        return state
    if state.settle is None:
        return replace(state, settle=Settle(first_seen=state.now, updates=((peer, connected),)))
    updates = state.settle.updates + ((peer, connected),)
    return replace(state, settle=replace(state.settle, updates=updates))


def _fold_counts(
    counts: tuple[tuple[NodeId, int], ...], updates: Iterable[tuple[NodeId, bool]]
) -> tuple[tuple[NodeId, int], ...]:
    table = dict(counts)
    for peer, connected in updates:
        table[peer] = max(0, table.get(peer, 0) + (1 if connected else -1))
    return tuple(sorted((peer, n) for peer, n in table.items() if n > 0))


def _settle_connections(state: ElectionState) -> tuple[ElectionState, list[Output]]:
    settle = state.settle
    assert settle is not None
    before = state.present_peers
    state = replace(state, settle=None, peer_counts=_fold_counts(state.peer_counts, settle.updates))
    after = state.present_peers
    dropped = frozenset(peer for peer, connected in settle.updates if not connected)
    state = replace(state, expected=state.expected - (dropped - after))  # gone: it won't speak
    if before == after and not (dropped and state.round is not None):
        return state, []  # an extra or lost connection to a peer that stays present
    if state.round is not None:  # new peers get a quiet tick to speak before an early end
        state = replace(state, round=replace(state.round, heard_at=state.now))
    return _on_membership_change(
        state, joined=after - before, dropped=dropped, seen_at=settle.first_seen
    )


def _on_membership_change(
    state: ElectionState, *, joined: frozenset[NodeId], dropped: frozenset[NodeId], seen_at: int
) -> tuple[ElectionState, list[Output]]:
    """Re-elect on a change of present peers, unless the round in flight already covers it.

    The reference awaits the round in flight and then bumps the clock. Here a departure that
    may have cut us off from a candidate restarts at once, and a join queues a rerun only
    when the round started before it; so a master's death costs one round, not two.
    """
    current = state.round
    if current is None:
        return _new_round(state)
    others = current.participants - {state.node_id}
    # Absent now after a disconnect: also a peer that came and went inside the window.
    left = dropped - state.present_peers
    if left & others or (dropped and not others <= state.present_peers):
        # A candidate vanished, or a closed connection may have cut off one we only hear
        # through relays: its status must not win.
        return _new_round(state)
    if joined and current.started_at < seen_at:
        return replace(state, rerun_for=state.rerun_for | joined), []
    return state, []  # its statuses already crossed the new links
