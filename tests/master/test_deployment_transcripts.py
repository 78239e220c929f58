"""Deployment scenarios as transcripts (tests/master/testdata/deployments/*.txt), driven against the pure
reconciler. Lines starting with "> " are the events a step produced; regenerate them with
SKULK_REGEN_TRANSCRIPTS=1. Steps: nodes, create <id> [replicas= lease= max_restarts= exclude=],
tick <s> (time passes, one reconcile pass), ready, lose <node>, crash <id> <error>, drain <node>,
extend <id> <s>, delete <id>, restart <id>."""

import difflib
import os
from datetime import timedelta
from itertools import count
from pathlib import Path

import pytest

from skulk.master import deployments as dep
from skulk.master.dispatch import DecideContext, decide, place
from skulk.master.sequencer import Sequencer
from skulk.types import commands as cmd
from skulk.types import events as ev
from skulk.types.runners import RunnerReady
from tests.master.test_command_table import T0, cluster
from tests.master.test_deployments import spec
from tests.master.test_placement_builders import GIB, memory

DATA = Path(__file__).parent / "testdata" / "deployments"
REGEN_ENV = "SKULK_REGEN_TRANSCRIPTS"


class Scenario:
    def __init__(self):
        self.seq: Sequencer | None = None
        self.nodes: list[str] = []
        self.now, self.backoff, self.crashes = 0, {}, []
        self.ids = count()
        self.short: dict[str, str] = {}  # instance id -> i1, i2, ... in order of appearance

    def ctx(self) -> DecideContext:
        return DecideContext(node_memory={n: memory(64 * GIB) for n in self.nodes}, new_id=lambda: f"x{next(self.ids)}",
                             node_names={n: n for n in self.nodes}, ring_port=61_008, now=T0 + timedelta(seconds=self.now))

    def run(self, words: list[str]) -> list:
        step, args = words[0], words[1:]
        if step == "nodes":
            self.nodes, self.seq = list(args), cluster(tuple(args))
            return []
        if step == "tick":
            self.now += int(args[0])
            events, self.backoff = dep.reconcile_deployments(self.seq.state, self.ctx(), place, self.backoff,
                                                             self.crashes)
            self.crashes = []
            return events
        if step == "create":
            fields = dict(a.split("=", 1) for a in args[1:])
            d = spec(args[0], replicas=int(fields.get("replicas", 1)), excluded_nodes=fields.get("exclude", "").split(",")
                     if fields.get("exclude") else [], lease_seconds=int(fields["lease"]) if "lease" in fields else None,
                     max_restarts=int(fields["max_restarts"]) if "max_restarts" in fields else None)
            return decide(self.seq.state, cmd.CreateDeployment(deployment=d), self.ctx())
        if step == "ready":
            return [ev.RunnerStatusUpdated(runner_id=r, runner_status=RunnerReady())
                    for i in self.seq.state.instances.values() for r in i.shard_assignments.runner_to_shard
                    if not isinstance(self.seq.state.runners.get(r), RunnerReady)]
        if step == "lose":
            self.nodes.remove(args[0])
            return [ev.NodeTimedOut(node_id=args[0])]
        if step == "crash":
            self.crashes.append(dep.Crash(args[0], T0 + timedelta(seconds=self.now), " ".join(args[1:])))
            return []
        if step == "drain":
            return [ev.NodeCordoned(node_id=args[0], draining=True)]
        commands = {"extend": lambda: cmd.ExtendDeploymentLease(deployment_id=args[0], seconds=int(args[1])),
                    "delete": lambda: cmd.DeleteDeployment(deployment_id=args[0]),
                    "restart": lambda: cmd.RestartDeployment(deployment_id=args[0])}
        return decide(self.seq.state, commands[step](), self.ctx())

    def line(self, e) -> str | None:
        name = type(e).__name__
        if isinstance(e, ev.InstanceCreated):
            self.short[e.instance.instance_id] = f"i{len(self.short) + 1}"
            return f"{name} {self.short[e.instance.instance_id]} of {e.instance.deployment_id} on {','.join(e.instance.node_ids())}"
        if isinstance(e, ev.InstanceDeleted):
            return f"{name} {self.short.get(e.instance_id, e.instance_id)} ({e.reason})"
        if isinstance(e, ev.DeploymentStatusChanged):
            return f"{name} {e.deployment_id} {e.status.value}" + (f" ({e.reason[:60]})" if e.reason else "")
        if isinstance(e, (ev.DeploymentCreated, ev.DeploymentUpdated)):
            d = e.deployment
            lease = f" expires +{(d.expires_at - T0).total_seconds():g}" if d.expires_at else ""
            return f"{name} {d.deployment_id} {d.status.value} restarts={len(d.restarts)}{lease}"
        if isinstance(e, (ev.LeaseExpiring, ev.LeaseExpired, ev.DeploymentDeleted)):
            return f"{name} {e.deployment_id}"
        return None  # runner and node facts the step itself stated


def run_transcript(text: str) -> str:
    scenario, out = Scenario(), []
    for raw in text.splitlines():
        if raw.startswith("> "):
            continue
        out.append(raw)
        if not raw.strip() or raw.startswith("#"):
            continue
        for e in scenario.run(raw.split()):
            scenario.seq.index(e, T0)
            line = scenario.line(e)
            if line:
                out.append(f"> +{scenario.now} {line}")
    return "\n".join(out) + "\n"


@pytest.mark.parametrize("path", sorted(DATA.glob("*.txt")), ids=lambda p: p.stem)
def test_transcript(path: Path):
    expected = path.read_text()
    actual = run_transcript(expected)
    if os.environ.get(REGEN_ENV) == "1":
        path.write_text(actual)
        return
    diff = "".join(difflib.unified_diff(expected.splitlines(True), actual.splitlines(True)))
    assert actual == expected, f"{path.name} changed (regenerate with {REGEN_ENV}=1):\n{diff}"
