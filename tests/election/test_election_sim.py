"""Randomised runs of the simulator: the properties the transcripts show, over many cases.

Failure model: processes stop (SIGKILL, noticed at once, or a hang whose connections close
a few ticks later), links drop and come back, nodes restart with the same id once their
old connections are gone, and gossip relays across partial meshes.
"""

import random

import pytest

from skulk.election import core
from skulk.election.core import CAMPAIGN_TICKS, SETTLE_TICKS
from skulk.election.sim import Simulator
from skulk.types.ids import NodeId, SessionId

FAILOVER_TICKS = 40  # the ~4 s budget after a master's death is noticed


def components(sim: Simulator) -> list[set[NodeId]]:
    seen: set[NodeId] = set()
    groups = []
    for node_id in sim.alive():
        if node_id not in seen:
            group = {node_id} | sim.reachable(node_id)
            seen |= group
            groups.append(group)
    return groups


def assert_each_component_agrees(sim: Simulator) -> None:
    for group in components(sim):
        sessions = {sim.session_of(n) for n in group}
        assert len(sessions) == 1, f"{sorted(group)} disagree: {sessions}"
        (session,) = sessions
        assert session.master_node_id in group, f"{sorted(group)} follow {session.master_node_id}"


def assert_quiet(sim: Simulator, ticks: int = 100) -> None:
    results, sent = len(sim.results), sim.sent
    sim.tick(ticks)
    assert sim.results[results:] == [], "elections kept happening after the network settled"
    assert sim.sent == sent, "a settled cluster still sends election messages"


def cluster(rng: random.Random, size: int, *, roles: bool = True) -> Simulator:
    sim = Simulator(latency=rng.choice([0, 1]))
    for i in range(size):
        force = roles and rng.random() < 0.1
        candidate = force or not roles or rng.random() > 0.15
        sim.add_node(f"n{i}", force_master=force, candidate=candidate)
        sim.command_seen(f"n{i}", rng.choice([0, 0, 1, 5]))
    sim.connect_all()
    sim.tick(SETTLE_TICKS + CAMPAIGN_TICKS + 1)
    assert_each_component_agrees(sim)
    return sim


def close_links(sim: Simulator, node_id: NodeId) -> None:
    for peer in sorted(sim.peers_of(node_id)):
        while sim.links[frozenset((node_id, peer))]:
            sim.disconnect(node_id, peer)


def random_event(sim: Simulator, rng: random.Random, hung: dict[NodeId, int]) -> None:
    names, alive = list(sim.nodes), sim.alive()
    a, b = rng.sample(names, 2)
    roll = rng.random()
    if roll < 0.3 and a in alive and b in alive:
        sim.connect(a, b)
    elif roll < 0.6:
        sim.disconnect(a, b)
    elif roll < 0.7 and a in alive and len(alive) > 1:
        sim.kill(a)
    elif roll < 0.75 and a in alive and len(alive) > 1:
        sim.halt(a)
        hung[a] = sim.now + rng.randint(0, 20)  # when its connections time out
    elif roll < 0.85 and a not in alive and a not in hung:
        sim.restart(a)
    elif roll < 0.95 and a in alive:
        sim.command_seen(a, rng.randint(1, 3))
    elif roll < 0.97:
        half = rng.sample(alive, len(alive) // 2)
        sim.partition([half, [n for n in alive if n not in half]])


@pytest.mark.parametrize("seed", range(300))
def test_churn_then_calm_converges(seed: int):
    rng = random.Random(seed)
    sim = cluster(rng, rng.randint(2, 7))
    hung: dict[NodeId, int] = {}
    for _ in range(rng.randint(5, 40)):
        random_event(sim, rng, hung)
        sim.tick(rng.choice([0, 1, 1, 2, 3, 5, 10, 25]))
        for node_id, due in list(hung.items()):
            if sim.now >= due:
                close_links(sim, node_id)
                del hung[node_id]
    for node_id in hung:
        close_links(sim, node_id)
    if rng.random() < 0.5:
        sim.connect_all()  # the dial loop restores the full mesh
    sim.tick(2 * (SETTLE_TICKS + CAMPAIGN_TICKS) + 50)
    assert_each_component_agrees(sim)
    assert_quiet(sim)


def current_master(sim: Simulator) -> NodeId:
    masters = {sim.session_of(n).master_node_id for n in sim.alive()}
    assert len(masters) == 1
    return masters.pop()


@pytest.mark.parametrize("seed", range(200))
def test_master_death_fails_over_within_4_seconds(seed: int):
    rng = random.Random(seed)
    sim = cluster(rng, rng.randint(2, 7))
    old_session = sim.session_of(sim.alive()[0])
    master = old_session.master_node_id
    killed_at, first = sim.now, len(sim.results)
    if rng.random() < 0.5:
        sim.kill(master)
    else:  # each peer notices within 0.3 s of the others
        sim.halt(master)
        for peer in sorted(sim.peers_of(master)):
            sim.tick(rng.randint(0, 1))
            sim.disconnect(master, peer)
    sim.tick(FAILOVER_TICKS - (sim.now - killed_at))
    survivors = sim.alive()
    sessions = {sim.session_of(n) for n in survivors}
    assert len(sessions) == 1, sessions
    (session,) = sessions
    assert session != old_session and session.master_node_id in survivors
    assert all(r.tick - killed_at <= FAILOVER_TICKS for r in sim.results[first:])
    assert {r.node_id for r in sim.results[first:]} == set(survivors)
    assert_quiet(sim)


@pytest.mark.parametrize("seed", range(100))
def test_joiner_adopts_the_incumbent_session(seed: int):
    rng = random.Random(seed)
    sim = cluster(rng, rng.randint(2, 6), roles=False)
    incumbent = sim.session_of(sim.alive()[0])
    members = sim.alive()
    sim.add_node("joiner")
    first = len(sim.results)
    for peer in rng.sample(members, rng.randint(1, len(members))):
        sim.connect("joiner", peer)
    sim.tick(2 * (SETTLE_TICKS + CAMPAIGN_TICKS))
    assert {sim.session_of(n) for n in sim.alive()} == {incumbent}
    results = sim.results[first:]
    assert all(not r.result.is_new_master for r in results if r.node_id != "joiner")
    assert [r.result.is_new_master for r in results if r.node_id == "joiner"][0]


@pytest.mark.parametrize("seed", range(100))
def test_restarted_node_adopts_the_cluster_session(seed: int):
    rng = random.Random(seed)
    sim = cluster(rng, rng.randint(3, 6), roles=False)
    victim = rng.choice(sim.alive())
    master = current_master(sim)
    sim.kill(victim)
    downtime = rng.randint(SETTLE_TICKS + 1, 2 * CAMPAIGN_TICKS)  # noticed, then back
    sim.tick(downtime)
    sim.restart(victim)
    sim.tick(2 * (SETTLE_TICKS + CAMPAIGN_TICKS))
    assert_each_component_agrees(sim)
    new_master = current_master(sim)
    if victim != master:
        assert new_master == master  # the incumbent keeps its session
    elif downtime > SETTLE_TICKS + CAMPAIGN_TICKS:
        assert new_master != victim  # back after the failover: the new master is senior
    # Back during the failover round, it joins that round as a fresh equal and may win.
    assert_quiet(sim)


# In a full mesh a round ends early (settle 2, statuses 1, quiet tick 1); joins take one tick
# more, as the incumbents hear the joiner's status only after it adopted their clock.
EARLY_TICKS = {"startup": 4, "failover": 4, "join": 5}


def ticks_until_agreed(sim: Simulator, voters: set[NodeId], limit: int = 80) -> int:
    first = len(sim.results)
    for waited in range(limit):
        voted = {r.node_id for r in sim.results[first:]}
        if voters <= voted and len(components(sim)) == 1:
            assert_each_component_agrees(sim)
            return waited
        sim.tick()
    raise AssertionError("no agreement")


@pytest.mark.parametrize("seed", range(60))
def test_full_mesh_rounds_end_early(seed: int):
    rng = random.Random(seed)
    sim = Simulator(latency=rng.choice([0, 1]))
    for i in range(rng.randint(2, 7)):
        sim.add_node(f"n{i}", force_master=rng.random() < 0.1)
        sim.command_seen(f"n{i}", rng.choice([0, 0, 1, 5]))
    sim.connect_all()
    assert ticks_until_agreed(sim, set(sim.alive())) <= EARLY_TICKS["startup"]
    sim.tick(CAMPAIGN_TICKS + 10)
    old = sim.session_of("n0")
    sim.kill(old.master_node_id)
    if sim.alive():
        assert ticks_until_agreed(sim, set(sim.alive())) <= EARLY_TICKS["failover"]
        assert sim.session_of(sim.alive()[0]) != old
    sim.tick(CAMPAIGN_TICKS + 10)
    sim.add_node("joiner")
    sim.connect_all()
    assert ticks_until_agreed(sim, set(sim.alive())) <= EARLY_TICKS["join"]
    elected = len(sim.results)
    sim.tick(CAMPAIGN_TICKS + 10)
    assert len(sim.results) == elected  # the deadline rebroadcasts elect nobody
    assert_quiet(sim)


def full_mesh_history(seed: int) -> set[tuple[NodeId, SessionId, int, bool]]:
    """Kills, restarts, joins and commands, 4 s apart, in a full mesh: who elected what."""
    rng = random.Random(seed)
    sim = cluster(rng, rng.randint(2, 6))
    for step_no in range(rng.randint(1, 6)):
        alive, dead = sim.alive(), [n for n in sim.nodes if not sim.nodes[n].alive]
        roll = rng.random()
        if roll < 0.35 and len(alive) > 1:
            sim.kill(current_master(sim) if rng.random() < 0.7 else rng.choice(alive))
        elif roll < 0.6 and dead:
            sim.restart(rng.choice(dead))
        elif roll < 0.8:
            sim.add_node(f"j{step_no}", force_master=rng.random() < 0.1)
            sim.connect_all()
        else:
            sim.command_seen(rng.choice(alive), rng.randint(1, 3))
        sim.tick(FAILOVER_TICKS)
    return {(r.node_id, r.result.session_id, r.result.won_clock, r.result.is_new_master)
            for r in sim.results}


@pytest.mark.parametrize("seed", range(150))
def test_early_end_elects_what_waiting_elects(seed: int, monkeypatch: pytest.MonkeyPatch):
    early = full_mesh_history(seed)
    monkeypatch.setattr(core, "_heard_everyone", lambda state: False)  # the reference
    assert early == full_mesh_history(seed)
