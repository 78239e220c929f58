"""Pure instance validation: is an instance someone asks for well formed for this cluster?

Placement only builds well-formed instances; `POST /instance` (a CreateInstance) carries any
instance a caller wrote, and a malformed one would fail every runner it names. The master and
the API both refuse such an instance with these reasons, before any event exists.
"""

import ipaddress
from collections.abc import Mapping

from skulk.types.deployments import MAX_DEPLOYMENTS, Deployment
from skulk.types.ids import is_valid_model_id
from skulk.types.instances import MlxJacclInstance, MlxRingInstance
from skulk.types.shards import TensorShardMetadata
from skulk.types.state import State

MAX_WORLD_SIZE = 256  # far beyond any cluster we run; bounds the work a hostile instance causes
MAX_PORT = 65_535


def instance_problems(state: State, instance) -> list[str]:
    """Every reason `instance` cannot be created in `state` (empty when it is fine)."""
    problems = _assignment_problems(state, instance)
    if problems:
        return problems  # the checks below assume one runner per node and ranks 0..n-1
    problems += _layer_problems(instance)
    if isinstance(instance, MlxRingInstance):
        problems += _ring_problems(instance)
    elif isinstance(instance, MlxJacclInstance):
        problems += _jaccl_problems(instance)
    return problems


def instance_refusal(state: State, instance) -> str | None:
    """One line saying why `instance` is refused, or None."""
    problems = instance_problems(state, instance)
    return f"instance {instance.instance_id[:64]} is malformed: " + "; ".join(problems) if problems else None


def blocked_refusal(instance, blocked: Mapping[str, str]) -> str | None:
    """Why `instance` may not go where it names (`blocked`: node -> why, e.g. cordoned), or None."""
    named = [blocked[n] for n in sorted(instance.shard_assignments.node_to_runner) if n in blocked]
    return "; ".join(named[:8]) + " (no new shards go there)" if named else None


def _assignment_problems(state: State, instance) -> list[str]:
    sa = instance.shard_assignments
    shards = sa.runner_to_shard
    world = len(shards)
    if instance.instance_id in state.instances:
        return [f"instance {instance.instance_id} already exists"]
    if not shards or world > MAX_WORLD_SIZE:
        return [f"an instance needs 1 to {MAX_WORLD_SIZE} shards, got {world}"]
    problems = []
    runners = list(sa.node_to_runner.values())
    if len(set(runners)) != len(runners):
        problems.append("a runner id is assigned to more than one node")
    if set(runners) != set(shards):
        problems.append("node_to_runner does not name every runner of runner_to_shard exactly once")
    unknown = sorted(n for n in sa.node_to_runner if n not in state.topology.nodes)
    if unknown:
        problems.append(f"unknown node(s): {', '.join(n[:64] for n in unknown[:8])}")
    sizes = {s.world_size for s in shards.values()}
    if sizes != {world}:
        problems.append(f"world size {sorted(sizes)} does not match the {world} shard(s)")
    ranks = sorted(s.device_rank for s in shards.values())
    if ranks != list(range(world)):
        problems.append(f"ranks must be 0..{world - 1} once each, got {ranks[:16]}")
    if instance.context_token_limit is not None and instance.context_token_limit < 1:
        problems.append("context_token_limit must be positive")
    return problems


def _layer_problems(instance) -> list[str]:
    sa = instance.shard_assignments
    by_rank = sorted(sa.runner_to_shard.values(), key=lambda s: s.device_rank)
    first = by_rank[0]
    if {s.model_card.model_id for s in by_rank} != {sa.model_id}:
        return [f"every shard must be of model {sa.model_id}"]
    if {type(s) for s in by_rank} != {type(first)}:
        return ["shards mix pipeline and tensor sharding"]
    if {s.n_layers for s in by_rank} != {first.n_layers} or first.n_layers < 1:
        return ["shards disagree on the model's layer count"]
    if first.n_layers != first.model_card.n_layers:
        return [f"shards say {first.n_layers} layers, the model card {first.model_card.n_layers}"]
    n = first.n_layers
    if isinstance(first, TensorShardMetadata):
        ok = all((s.start_layer, s.end_layer) == (0, n) for s in by_rank)
        return [] if ok else [f"tensor shards must each hold layers [0, {n})"]
    end = 0
    for s in by_rank:
        if s.start_layer != end or s.end_layer <= s.start_layer:
            return [f"pipeline layer ranges must cover [0, {n}) contiguously in rank order"]
        end = s.end_layer
    return [] if end == n else [f"pipeline layer ranges end at {end}, not at {n}"]


def _ring_problems(instance: MlxRingInstance) -> list[str]:
    nodes = set(instance.shard_assignments.node_to_runner)
    world = len(nodes)
    problems = []
    if not 1 <= instance.ephemeral_port <= MAX_PORT - world + 1:
        problems.append(f"ephemeral_port {instance.ephemeral_port} leaves no room for {world} ring port(s)")
    if set(instance.hosts_by_node) != nodes:
        problems.append("hosts_by_node must list ring hosts for every node of the instance, and only those")
    for node, hosts in instance.hosts_by_node.items():
        if len(hosts) != world:
            problems.append(f"node {node[:64]} has {len(hosts)} ring host(s), expected {world}")
        elif any(not _is_ip(h.ip) or not 0 <= h.port <= MAX_PORT for h in hosts):
            problems.append(f"node {node[:64]} has a ring host that is not an IP address and port")
    return problems


def _jaccl_problems(instance: MlxJacclInstance) -> list[str]:
    nodes = set(instance.shard_assignments.node_to_runner)
    world = len(nodes)
    problems = []
    if set(instance.jaccl_coordinators) != nodes:
        problems.append("jaccl_coordinators must name a coordinator for every node of the instance")
    if len(instance.jaccl_devices) != world or any(len(row) != world for row in instance.jaccl_devices):
        problems.append(f"jaccl_devices must be a {world}x{world} matrix")
    return problems


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def deployment_refusal(state: State, d: Deployment) -> str | None:
    """Why a deployment someone asks for is refused (bounded, its model known), or None."""
    if d.deployment_id in state.deployments:
        return f"deployment {d.deployment_id} already exists"
    if len(state.deployments) >= MAX_DEPLOYMENTS:
        return f"the cluster already holds {MAX_DEPLOYMENTS} deployments"
    if not is_valid_model_id(d.model_id):
        return f"model id {d.model_id[:160]!r} is not a valid model id"
    if d.model_card is None or d.model_card.model_id != d.model_id:
        return f"model {d.model_id} has no model card"
    return None
