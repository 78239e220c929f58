"""What a new master carries over from its prior view when a new session starts."""

from datetime import datetime

from skulk.types.downloads import DownloadCompleted
from skulk.types.state import State


def seed_state_for_new_session(prior: State, now: datetime) -> State:
    """Durable facts survive (instances, completed downloads, connectivity); live ones don't."""
    downloads = {
        node: [d for d in entries if isinstance(d, DownloadCompleted)]
        for node, entries in prior.downloads.items()
    }
    downloads = {node: entries for node, entries in downloads.items() if entries}
    carried_nodes = (
        set(prior.node_network) | set(prior.node_thunderbolt) | set(prior.node_thunderbolt_bridge)
        | {n for inst in prior.instances.values() for n in inst.shard_assignments.node_to_runner}
    )
    return State(
        instances=dict(prior.instances),
        downloads=downloads,
        tracing_enabled=prior.tracing_enabled,
        cluster_config=prior.cluster_config,
        deployments=dict(prior.deployments),  # desired state, keys and projects outlive every master
        api_keys=dict(prior.api_keys),
        projects=dict(prior.projects),
        auto_place_done=prior.auto_place_done,
        node_network=dict(prior.node_network),
        node_thunderbolt=dict(prior.node_thunderbolt),
        node_thunderbolt_bridge=dict(prior.node_thunderbolt_bridge),
        thunderbolt_bridge_cycles=list(prior.thunderbolt_bridge_cycles),
        last_seen={node: now for node in carried_nodes},
    )
