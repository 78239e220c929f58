"""Cluster-synced config: which keys travel, how a node merges them, and the master's decision."""

from datetime import datetime, timezone

from skulk.config.sync import NODE_LOCAL_KEYS, cluster_part, merge_cluster_part, needs_restart
from skulk.master.decide import decide_command
from skulk.state.apply import apply
from skulk.state.seed import seed_state_for_new_session
from skulk.types import commands as cmd
from skulk.types import events as ev
from skulk.types.state import State


def test_only_cluster_wide_keys_travel():
    values = {"inference": {"kv_cache_backend": "optiq"}, "hf_token": "secret", "api_port": 9000,
              "node_name": "box", "cluster": {"namespace": "lab"}, "tracing": {"retention_days": 1}}
    assert cluster_part(values) == {"inference": {"kv_cache_backend": "optiq"}, "tracing": {"retention_days": 1}}
    assert "hf_token" in NODE_LOCAL_KEYS


def test_merge_keeps_local_keys_and_takes_the_cluster_for_the_rest():
    local = {"hf_token": "mine", "api_port": 9000, "tracing": {"retention_days": 1}, "logging": {"enabled": True}}
    merged = merge_cluster_part(local, {"inference": {"kv_cache_backend": "optiq"}, "hf_token": "theirs"})
    # logging and tracing were dropped by the cluster config, so they go here too
    assert merged == {"hf_token": "mine", "api_port": 9000, "inference": {"kv_cache_backend": "optiq"}}


def test_restart_keys_exclude_live_ones():
    assert needs_restart(["logging.enabled", "tracing.retention_days", "inference.kv_cache_backend",
                          "default_model.model_id"]) == ["default_model.model_id"]


def test_master_strips_secrets_and_skips_no_op_changes():
    events = decide_command(State(), cmd.SetClusterConfig(config={"hf_token": "x", "api_port": 1,
                                                                   "logging": {"enabled": True}}))
    assert [type(e) for e in events] == [ev.ClusterConfigChanged]
    assert events[0].config == {"logging": {"enabled": True}}
    state = apply(State(), ev.IndexedEvent(idx=0, event=events[0]))
    assert state.cluster_config == {"logging": {"enabled": True}}
    assert decide_command(state, cmd.SetClusterConfig(config={"logging": {"enabled": True}})) == []


def test_a_new_session_carries_the_cluster_config():
    state = State(cluster_config={"tracing": {"retention_days": 2}})
    assert seed_state_for_new_session(state, datetime.now(timezone.utc)).cluster_config == state.cluster_config
