"""Election scenario transcripts: commands in a text file, the simulator's answers after them.

Lines starting with "> " and the text after `expect` are produced by the run (regenerable);
`require` lines are invariants checked on every run, regeneration or not. Commands:

    latency N                  message delay in ticks (default 1; before any node)
    nodes a b c                start candidate nodes
    node a [force-master] [not-candidate]
    connect all | connect a b  full mesh, or one more connection between a and b
    disconnect a b             close one connection between a and b
    partition a b | c d        cut every link between the groups
    kill a | restart a         SIGKILL; fresh core with the same id that redials its peers
    halt a                     a stops, its peers notice only on `disconnect` (staggered detection)
    command a [N]              a has seen N more messages on the commands topic
    lose a b                   the next broadcast from a never reaches b
    rogue from=x master=m clock=N seniority=S [commands=C]
                               a status signed by x (any name, node or not) reaches every
                               live node; refusals print as "+0 a b refused <reason>"
    tick N                     advance N ticks of 100 ms; prints the election results
    expect ...                 rewritten with the nodes grouped by current session
    require agree [a b ...]    those (default: all live) nodes share one session, mastered
                               by one of them
    require master m [a b ...] those (default: all live) nodes follow m, which is alive
    require not-master m       no live node follows m
    require quiet              during the last `tick` nobody was elected or broadcast
"""

from __future__ import annotations

from dataclasses import dataclass, field

from skulk.election.sim import ResultRecord, Simulator
from skulk.types.election import ElectionMessage
from skulk.types.ids import SessionId

REGEN_ENV = "SKULK_REGEN_TRANSCRIPTS"
OUTPUT_PREFIX = "> "


class TranscriptError(AssertionError):
    def __init__(self, line_no: int, line: str, why: str):
        super().__init__(f"line {line_no}: {line!r}: {why}")


@dataclass
class _Run:
    sim: Simulator = field(default_factory=Simulator)
    last_tick_activity: tuple[int, int] | None = None  # (results, broadcasts) during it


def _check(condition: bool, why: str) -> None:
    if not condition:
        raise AssertionError(why)


def run_transcript(text: str) -> str:
    """Execute a transcript and return it with every generated part rewritten."""
    run = _Run()
    out: list[str] = []
    for line_no, line in enumerate(text.splitlines(), start=1):
        if line.startswith(OUTPUT_PREFIX.rstrip()):
            continue  # previous output, regenerated below
        words = line.split("#", 1)[0].split()
        if not words:
            out.append(line)
            continue
        try:
            rendered, generated = _execute(run, words)
        except (ValueError, KeyError, IndexError) as exc:
            raise TranscriptError(line_no, line, f"{type(exc).__name__}: {exc}") from exc
        except AssertionError as exc:
            raise TranscriptError(line_no, line, str(exc)) from exc
        if rendered is not None and "#" in line:
            rendered += "  #" + line.split("#", 1)[1]  # keep a trailing comment
        out.append(rendered if rendered is not None else line)
        out += [OUTPUT_PREFIX + g for g in generated]
    return "\n".join(out) + "\n"


def _execute(run: _Run, words: list[str]) -> tuple[str | None, list[str]]:
    """Run one command: (replacement for the line or None, generated output lines)."""
    sim, (verb, *args) = run.sim, words
    before, start_tick, sent = len(sim.results), sim.now, sim.sent
    refused = len(sim.refusals)
    match verb:
        case "latency":
            if sim.nodes:
                raise ValueError("set latency before adding nodes")
            sim.latency = int(args[0])
        case "nodes":
            for name in args:
                sim.add_node(name)
        case "node":
            _check_flags(args[1:], {"force-master", "not-candidate"})
            force, observer = "force-master" in args, "not-candidate" in args
            sim.add_node(args[0], force_master=force, candidate=not observer)
        case "connect" if args == ["all"]:
            sim.connect_all()
        case "connect":
            sim.connect(*_pair(args))
        case "disconnect":
            sim.disconnect(*_pair(args))
        case "partition":
            sim.partition([group.split() for group in " ".join(args).split("|")])
        case "kill":
            sim.kill(args[0])
        case "halt":
            sim.halt(args[0])
        case "restart":
            sim.restart(args[0])
        case "command":
            sim.command_seen(args[0], int(args[1]) if len(args) > 1 else 1)
        case "lose":
            sim.lose_next(*_pair(args))
        case "rogue":
            fields = dict(arg.split("=", 1) for arg in args)
            sim.inject(_rogue_status(fields), sender=fields["from"])
        case "tick":
            sim.tick(int(args[0]))
            run.last_tick_activity = (len(sim.results) - before, sim.sent - sent)
        case "expect":
            return "expect " + describe_sessions(sim), []
        case "require":
            _require(run, args)
        case _:
            raise ValueError(f"unknown command {verb!r}")
    generated = format_results(sim.results[before:], start_tick=start_tick)
    return None, generated + format_refusals(sim.refusals[refused:], start_tick=start_tick)


def _rogue_status(fields: dict[str, str]) -> ElectionMessage:
    # Built without validation: the core must hold up even where the wire bounds did not apply.
    session = SessionId.model_construct(master_node_id=fields["master"], election_clock=int(fields["clock"]))
    return ElectionMessage.model_construct(
        clock=int(fields["clock"]), seniority=int(fields["seniority"]),
        proposed_session=session, commands_seen=int(fields.get("commands", 0)))


def format_refusals(refusals: list[tuple[int, str, str]], *, start_tick: int) -> list[str]:
    lines: dict[tuple[int, str], list[str]] = {}
    for tick, node_id, reason in refusals:
        lines.setdefault((tick - start_tick, reason), []).append(node_id)
    return [f"+{dt} {' '.join(nodes)} refused {reason}" for (dt, reason), nodes in lines.items()]


def _pair(args: list[str]) -> tuple[str, str]:
    if len(args) != 2:
        raise ValueError("expected two node names")
    return args[0], args[1]


def _check_flags(flags: list[str], allowed: set[str]) -> None:
    unknown = set(flags) - allowed
    if unknown:
        raise ValueError(f"unknown flags {sorted(unknown)}")


def session_text(session: SessionId) -> str:
    return f"{session.master_node_id}:{session.election_clock}"


def describe_sessions(sim: Simulator) -> str:
    """Live nodes grouped by current session: "n1 n2 on n2:5 | n3 on n3:0"."""
    groups: dict[str, list[str]] = {}
    for node_id in sim.alive():
        groups.setdefault(session_text(sim.session_of(node_id)), []).append(node_id)
    return " | ".join(f"{' '.join(nodes)} on {session}" for session, nodes in groups.items())


def format_results(records: list[ResultRecord], *, start_tick: int) -> list[str]:
    """One line per (tick, outcome), ticks relative to the command start.

    "+32 n1 n2 -> n2:5 clock 5 new": at +32, n1 and n2 elected session n2:5 in the round at
    clock 5, a session change for them ("same": they were already in it).
    """
    lines: dict[tuple[int, str, int, bool], list[str]] = {}
    for record in records:
        r = record.result
        key = (record.tick - start_tick, session_text(r.session_id), r.won_clock, r.is_new_master)
        lines.setdefault(key, []).append(record.node_id)
    return [
        f"+{dt} {' '.join(nodes)} -> {session} clock {clock} {'new' if new else 'same'}"
        for (dt, session, clock, new), nodes in lines.items()
    ]


def _require(run: _Run, args: list[str]) -> None:
    sim = run.sim
    match args:
        case ["agree", *names]:
            names = names or sim.alive()
            sessions = {sim.session_of(n) for n in names}
            _check(len(sessions) == 1, f"nodes disagree: {describe_sessions(sim)}")
            master = sessions.pop().master_node_id
            _check(master in names, f"their master {master} is not among them")
        case ["master", master, *names]:
            _check(sim.nodes[master].alive, f"{master} is not running")
            for name in names or sim.alive():
                got = sim.session_of(name).master_node_id
                _check(got == master, f"{name} follows {got}")
        case ["not-master", master]:
            followers = [n for n in sim.alive() if sim.session_of(n).master_node_id == master]
            _check(not followers, f"{' '.join(followers)} follow {master}")
        case ["quiet"]:
            _check(run.last_tick_activity is not None, "no tick yet")
            _check(run.last_tick_activity == (0, 0), "the last tick elected or broadcast")
        case _:
            raise ValueError(f"unknown requirement {' '.join(args)!r}")
