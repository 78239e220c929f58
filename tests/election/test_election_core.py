"""Unit tests of the pure election core, one rule at a time."""

import subprocess
import sys

import pytest

from skulk.election.core import (
    ANSWER_EVERY_TICKS,
    CAMPAIGN_TICKS,
    FORCE_MASTER_SENIORITY,
    NON_CANDIDATE_SENIORITY,
    QUIET_TICKS,
    SETTLE_TICKS,
    Broadcast,
    CommandSeen,
    Elected,
    ElectionState,
    MessageReceived,
    Output,
    PeerConnectionChanged,
    Tick,
    start,
    step,
)
from skulk.errors import ConfigError
from skulk.types.election import ElectionMessage, ElectionResult
from skulk.types.ids import SessionId


def sid(node_id: str, clock: int) -> SessionId:
    return SessionId(master_node_id=node_id, election_clock=clock)


def msg(sender: str, clock: int, seniority: int = 1, commands: int = 0) -> ElectionMessage:
    """A follower's status: it proposes a new session of its own at `clock`."""
    session = sid(sender, clock)
    return ElectionMessage(
        clock=clock, seniority=seniority, proposed_session=session, commands_seen=commands
    )


def hear(state: ElectionState, *messages: ElectionMessage) -> tuple[ElectionState, list[Output]]:
    return feed(state, *(MessageReceived(m) for m in messages))


def ticks(state: ElectionState, n: int) -> tuple[ElectionState, list[Output]]:
    outputs: list[Output] = []
    for _ in range(n):
        state, more = step(state, Tick())
        outputs += more
    return state, outputs


def feed(state: ElectionState, *events) -> tuple[ElectionState, list[Output]]:
    outputs: list[Output] = []
    for event in events:
        state, more = step(state, event)
        outputs += more
    return state, outputs


def broadcasts(outputs: list[Output]) -> list[ElectionMessage]:
    return [o.message for o in outputs if isinstance(o, Broadcast)]


def results(outputs: list[Output]):
    return [o.result for o in outputs if isinstance(o, Elected)]


# Startup ---------------------------------------------------------------------------------


def test_startup_elects_itself_at_once_and_keeps_its_session():
    state, outputs = start("a")
    assert state.current_session == SessionId(master_node_id="a", election_clock=0)
    assert state.is_master and state.round is None and state.clock == 0
    assert state.seniority == 1
    (status, again) = broadcasts(outputs)
    assert status == again and status.seniority == 0
    assert status.proposed_session == state.current_session
    (result,) = results(outputs)
    assert result == ElectionResult(session_id=sid("a", 0), won_clock=0, is_new_master=False)
    assert isinstance(outputs[-1], Elected)  # the rebroadcast goes out before the result


def test_force_master_and_non_candidate_seniority():
    assert start("a", force_master=True)[0].seniority == FORCE_MASTER_SENIORITY
    assert start("a", candidate=False)[0].seniority == NON_CANDIDATE_SENIORITY
    with pytest.raises(ConfigError):
        start("a", force_master=True, candidate=False)


def test_state_is_immutable_and_step_is_pure():
    state, _ = start("a")
    before = state
    after, _ = step(state, PeerConnectionChanged("b", True))
    assert state == before and after != before
    with pytest.raises(AttributeError):
        state.clock = 3  # type: ignore[misc]


# Messages --------------------------------------------------------------------------------


def test_own_messages_are_dropped():
    state, _ = start("a")
    after, outputs = step(state, MessageReceived(msg("a", 9)))
    assert after == state and outputs == []


def test_higher_clock_is_adopted_and_starts_a_round_with_it():
    state, _ = start("a")
    state, outputs = step(state, MessageReceived(msg("b", 4)))
    assert state.clock == 4 and state.round is not None
    (status,) = broadcasts(outputs)
    # Still master of its own startup session, so it proposes that session.
    assert status.clock == 4 and status.proposed_session == sid("a", 0)
    state, outputs = ticks(state, CAMPAIGN_TICKS - 1)
    assert outputs == []
    state, outputs = ticks(state, 1)
    assert broadcasts(outputs) == [status]  # rebroadcast at the end
    (result,) = results(outputs)
    assert result == ElectionResult(session_id=sid("b", 4), won_clock=4, is_new_master=True)
    assert state.current_session == result.session_id and not state.is_master


def test_lower_clock_is_not_a_candidate_but_is_answered_once_a_second():
    state, _ = start("a")
    state, _ = step(state, MessageReceived(msg("b", 4)))
    state, outputs = feed(state, MessageReceived(msg("c", 2)), MessageReceived(msg("d", 1)))
    assert broadcasts(outputs) == [state.round.status]
    assert state.round.participants == {"a", "b"}
    state, _ = ticks(state, ANSWER_EVERY_TICKS - 1)
    state, outputs = step(state, MessageReceived(msg("c", 2)))
    assert broadcasts(outputs) == []  # every node answering every tick was a broadcast storm
    state, _ = ticks(state, 1)
    state, outputs = step(state, MessageReceived(msg("c", 2)))
    assert broadcasts(outputs) == [state.round.status]


def test_a_late_status_that_would_not_have_won_leaves_the_result_and_the_winner_answers():
    state, _ = start("a")
    state, _ = step(state, MessageReceived(msg("b", 4, seniority=5)))
    state, _ = ticks(state, CAMPAIGN_TICKS)
    assert state.current_session.master_node_id == "b"
    kept, outputs = step(state, MessageReceived(msg("c", 4)))  # uncounted, ranks below b
    assert kept.clock == 4 and kept.round is None and outputs == []
    winner, _ = start("b")
    winner, _ = step(winner, MessageReceived(msg("a", 4)))
    winner, _ = ticks(winner, CAMPAIGN_TICKS)
    assert winner.is_master
    winner, outputs = step(winner, MessageReceived(msg("aa", 4)))  # ranks below b too (node id)
    assert winner.round is None and [m.proposed_session.master_node_id for m in broadcasts(outputs)] == ["b"]


def test_equal_clock_joins_the_round_once_per_sender():
    state, _ = start("a")
    state, _ = hear(state, msg("b", 4), msg("c", 4), msg("c", 4))
    assert len(state.round.candidates) == 3 and state.round.participants == {"a", "b", "c"}


def test_winner_seniority_counts_distinct_participants():
    state, _ = start("z")
    state, _ = hear(state, msg("b", 4), msg("c", 4), msg("b", 4))
    state, outputs = ticks(state, CAMPAIGN_TICKS)
    assert results(outputs)[0].session_id.master_node_id == "z"
    assert state.seniority == 3


def test_non_candidate_never_gains_seniority_and_loses_to_candidates():
    state, _ = start("z", candidate=False)
    state, _ = step(state, MessageReceived(msg("b", 4, seniority=0)))
    state, outputs = ticks(state, CAMPAIGN_TICKS)
    assert results(outputs)[0].session_id.master_node_id == "b"
    assert state.seniority == NON_CANDIDATE_SENIORITY


def test_ranking_seniority_then_commands_then_id():
    state, _ = start("a")
    state, _ = feed(
        state,
        CommandSeen(3),
        MessageReceived(msg("b", 4, seniority=2, commands=0)),
        MessageReceived(msg("c", 4, seniority=1, commands=9)),
    )
    state, outputs = ticks(state, CAMPAIGN_TICKS)
    assert results(outputs)[0].session_id.master_node_id == "b"
    state, _ = hear(state, msg("c", 5, commands=2), msg("d", 5, commands=2))
    state, outputs = ticks(state, CAMPAIGN_TICKS)
    assert results(outputs)[0].session_id.master_node_id == "a"  # 3 commands seen beat 2


def test_incumbent_proposes_its_running_session_and_follower_a_new_one():
    own = sid("a", 0)
    state, _ = start("a")
    state, _ = step(state, MessageReceived(msg("b", 1, seniority=0)))
    state, outputs = ticks(state, CAMPAIGN_TICKS)
    assert results(outputs)[0].session_id == own and not results(outputs)[0].is_new_master
    assert state.seniority == 2
    state, outputs = step(state, MessageReceived(msg("b", 2, seniority=0)))
    assert broadcasts(outputs)[0].proposed_session == own
    state, outputs = step(state, MessageReceived(msg("c", 3, seniority=5)))
    state, outputs = ticks(state, CAMPAIGN_TICKS)
    (result,) = results(outputs)
    assert result == ElectionResult(session_id=sid("c", 3), won_clock=3, is_new_master=True)
    state, outputs = step(state, MessageReceived(msg("c", 4, seniority=5)))
    assert broadcasts(outputs)[0].proposed_session == sid("a", 4)


def test_late_status_that_was_counted_is_ignored_and_uncounted_one_reruns():
    state, _ = start("a")
    state, _ = step(state, MessageReceived(msg("b", 4)))
    state, _ = ticks(state, CAMPAIGN_TICKS)
    same, outputs = step(state, MessageReceived(msg("b", 4)))
    assert same == state and outputs == []
    state, outputs = step(state, MessageReceived(msg("c", 4)))
    assert state.clock == 5 and state.round is not None
    assert [m.clock for m in broadcasts(outputs)] == [5]


# Connections -----------------------------------------------------------------------------


def test_connection_updates_settle_then_start_one_round_at_clock_plus_one():
    state, _ = start("a")
    state, outputs = feed(state, PeerConnectionChanged("b", True), PeerConnectionChanged("c", True))
    state, more = ticks(state, SETTLE_TICKS - 1)
    assert outputs + more == [] and state.round is None
    state, outputs = ticks(state, 1)
    assert state.clock == 1 and state.present_peers == {"b", "c"}
    assert [m.clock for m in broadcasts(outputs)] == [1]


def test_multi_homed_and_flapping_connections_are_not_membership_changes():
    state, _ = start("a")
    state, _ = step(state, PeerConnectionChanged("b", True))
    state, _ = ticks(state, SETTLE_TICKS)
    state, _ = step(state, MessageReceived(msg("b", state.clock, seniority=1)))
    state, _ = ticks(state, CAMPAIGN_TICKS)
    clock = state.clock
    for events in (
        [PeerConnectionChanged("b", True)],  # a second connection
        [PeerConnectionChanged("b", False)],  # back to one
        [PeerConnectionChanged("b", False), PeerConnectionChanged("b", True)],  # flap in a window
        [PeerConnectionChanged("a", True)],  # ourselves
    ):
        state, outputs = feed(state, *events)
        state, more = ticks(state, SETTLE_TICKS)
        assert outputs + more == [] and state.clock == clock and state.present_peers == {"b"}


def test_departure_of_a_candidate_cancels_the_round_at_once():
    state, _ = start("a")
    state, _ = feed(state, PeerConnectionChanged("b", True), PeerConnectionChanged("c", True))
    state, _ = ticks(state, SETTLE_TICKS)
    state, _ = feed(state, MessageReceived(msg("b", 1, seniority=9)), MessageReceived(msg("c", 1)))
    state, _ = ticks(state, 5)
    state, _ = step(state, PeerConnectionChanged("b", False))
    state, outputs = ticks(state, SETTLE_TICKS)
    assert results(outputs) == [] and state.clock == 2 and state.round.participants == {"a"}


def test_departure_of_a_non_candidate_during_a_round_needs_no_rerun():
    state, _ = start("a")
    state, _ = feed(state, PeerConnectionChanged("b", True), PeerConnectionChanged("c", True))
    state, _ = ticks(state, SETTLE_TICKS)
    state, _ = step(state, MessageReceived(msg("c", 1)))
    state, _ = step(state, PeerConnectionChanged("b", False))
    state, _ = ticks(state, SETTLE_TICKS)
    assert state.clock == 1 and state.rerun_for == frozenset()
    state, outputs = ticks(state, CAMPAIGN_TICKS)
    assert len(results(outputs)) == 1 and state.round is None


def test_join_during_an_older_round_queues_a_rerun_unless_the_round_counted_it():
    state, _ = start("a")
    state, _ = step(state, MessageReceived(msg("b", 3)))
    state, _ = ticks(state, 5)
    state, _ = step(state, PeerConnectionChanged("d", True))
    state, _ = ticks(state, SETTLE_TICKS)
    assert state.rerun_for == {"d"} and state.clock == 3
    counted, outputs = step(state, MessageReceived(msg("d", 3)))
    counted, outputs = ticks(counted, CAMPAIGN_TICKS)
    assert len(results(outputs)) == 1 and counted.round is None  # d was counted: no rerun
    state, outputs = ticks(state, CAMPAIGN_TICKS)
    assert len(results(outputs)) == 1 and state.clock == 4 and state.round is not None
    assert broadcasts(outputs)[-1].clock == 4


def test_round_started_after_the_change_covers_it():
    state, _ = start("a")
    state, _ = step(state, PeerConnectionChanged("d", True))
    state, _ = step(state, MessageReceived(msg("b", 3)))  # the round starts inside the window
    state, outputs = ticks(state, SETTLE_TICKS)
    assert outputs == [] and state.clock == 3 and state.rerun_for == frozenset()


def test_a_round_that_hears_no_peer_is_retried_once_at_a_higher_clock():
    state, _ = start("a")
    state, _ = step(state, PeerConnectionChanged("b", True))
    state, _ = ticks(state, SETTLE_TICKS + CAMPAIGN_TICKS)
    assert state.clock == 2 and state.round is not None and state.round.retry
    state, outputs = ticks(state, CAMPAIGN_TICKS)
    (result,) = results(outputs)
    assert result.won_clock == 2 and state.round is None  # no second retry


# Early end -------------------------------------------------------------------------------


def with_peers(*peers: str) -> ElectionState:
    """Node "a" after its peers connected and settled: its round at clock 1 is open."""
    state, _ = start("a")
    state, _ = feed(state, *(PeerConnectionChanged(p, True) for p in peers))
    state, _ = ticks(state, SETTLE_TICKS)
    assert state.round is not None and state.clock == 1
    return state


def test_round_ends_early_once_every_present_peer_spoke_and_a_tick_passed():
    state = with_peers("b", "c")
    state, _ = hear(state, msg("b", 1), msg("c", 1))
    state, outputs = ticks(state, QUIET_TICKS - 1)
    assert outputs == []
    state, outputs = ticks(state, 1)
    (result,) = results(outputs)
    assert result.session_id == sid("c", 1) and state.round is None
    own = broadcasts(outputs)
    # The rebroadcast goes out again, once, at the old deadline; nobody is elected then.
    state, outputs = ticks(state, CAMPAIGN_TICKS - QUIET_TICKS - 1)
    assert outputs == []
    state, outputs = ticks(state, 1)
    assert outputs == [Broadcast(own[0])]
    state, outputs = ticks(state, CAMPAIGN_TICKS)
    assert outputs == []


def test_a_silent_present_peer_or_a_stranger_holds_the_round_to_its_deadline():
    for heard in ([msg("b", 1)], [msg("b", 1), msg("c", 1), msg("x", 1)]):
        state = with_peers("b", "c")
        state, _ = hear(state, *heard)
        state, outputs = ticks(state, CAMPAIGN_TICKS - 1)
        assert outputs == [] and state.round is not None
        state, outputs = ticks(state, 1)
        assert len(results(outputs)) == 1


def test_no_early_end_while_connection_updates_settle():
    state = with_peers("b")
    state, _ = hear(state, msg("b", 1))
    state, _ = ticks(state, 1)
    state, _ = step(state, PeerConnectionChanged("b", True))  # a second link: no change
    state, outputs = ticks(state, SETTLE_TICKS - 1)
    assert outputs == [] and state.round is not None
    state, outputs = ticks(state, 1)
    assert len(results(outputs)) == 1


def test_nodes_heard_last_round_are_expected_until_seen_leaving():
    state = with_peers("b")
    state, _ = hear(state, msg("b", 1), msg("x", 1))  # x: relayed, a stranger
    state, _ = ticks(state, CAMPAIGN_TICKS)
    assert state.round is None and state.expected == {"b", "x"}
    state, _ = hear(state, msg("b", 2))
    state, outputs = ticks(state, QUIET_TICKS + 1)
    assert outputs == []  # x has not spoken yet
    state, _ = hear(state, msg("x", 2))
    state, outputs = ticks(state, QUIET_TICKS)
    assert len(results(outputs)) == 1
    state, _ = step(state, PeerConnectionChanged("b", False))
    state, _ = ticks(state, SETTLE_TICKS)
    assert state.expected == {"x"} and state.round.clock == 3


def test_a_late_status_after_an_early_end_reelects_and_is_expected_next():
    state = with_peers("b")
    state, _ = hear(state, msg("b", 1))
    state, outputs = ticks(state, QUIET_TICKS)
    assert results(outputs)[0].session_id == sid("b", 1)
    # A better status at the same clock, never counted: a new round, waiting for it too.
    state, outputs = hear(state, msg("z", 1, seniority=5))
    assert state.clock == 2 and state.echo is None
    assert [m.clock for m in broadcasts(outputs)] == [2]
    state, _ = hear(state, msg("b", 2))
    state, outputs = ticks(state, QUIET_TICKS + 1)
    assert outputs == []
    state, _ = hear(state, msg("z", 2, seniority=5))
    state, outputs = ticks(state, QUIET_TICKS)
    assert results(outputs)[0].session_id == sid("z", 2)


def test_core_does_not_import_trio():
    modules = "skulk.election.core, skulk.election.sim, skulk.election.transcript"
    code = f"import sys, {modules}; print('trio' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_a_restarted_node_starts_a_fresh_session_id():
    from skulk.election.core import start
    first, _ = start("n1", initial_clock=1)
    again, _ = start("n1", initial_clock=2)
    assert first.current_session != again.current_session and again.clock == 2


def test_incarnation_counter_increases_across_starts(tmp_path):
    from skulk.node.incarnation import next_incarnation
    path = tmp_path / "home" / "incarnation"
    assert [next_incarnation(path) for _ in range(3)] == [1, 2, 3]
    path.write_text("garbage")
    assert next_incarnation(path) == 1


def test_statuses_that_lie_or_leap_are_refused_before_they_count():
    from skulk.election.core import Refused
    from skulk.election.bounds import MAX_CLOCK_JUMP

    state, _ = start("a")
    cases = {
        "forged_sender": (msg("b", 1), "rogue"),
        "seniority_out_of_range": (msg("b", 1, seniority=FORCE_MASTER_SENIORITY + 1), "b"),
        "clock_jump": (msg("b", MAX_CLOCK_JUMP + 1), "b"),
    }
    for reason, (message, sender) in cases.items():
        after, outputs = step(state, MessageReceived(message, sender))
        assert outputs == [Refused(reason, message)] and after == state
    # A signed status within the bounds takes part as before.
    after, outputs = step(state, MessageReceived(msg("b", 1), "b"))
    assert after.round is not None and after.clock == 1 and broadcasts(outputs)
