"""The node's durable copy of the state: what goes in, when it is written, what a cold master gets back."""

import os
from datetime import datetime, timezone

import trio

from skulk.node.durable_state import DurableState, cold_seed, durable_view
from skulk.state.seed import seed_state_for_new_session
from skulk.types.access import ApiKeyRecord
from skulk.types.deployments import Deployment, DeploymentStatus as S
from skulk.types.projects import ProjectPolicy
from skulk.types.state import State
from tests.factories import card, ring_instance

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


def full_state(idx: int = 5) -> State:
    d = {"d1": Deployment(deployment_id="d1", model_id="org/tiny", model_card=card(), status=S.ready),
         "d2": Deployment(deployment_id="d2", model_id="org/tiny", model_card=card(), status=S.failed, reason="boom")}
    key = ApiKeyRecord(id="k1", name="k", role="admin", created_at=T0, salt="ab" * 16, key_hash="cd" * 32)
    return State(deployments=d, api_keys={"k1": key}, projects={"team": ProjectPolicy(name="team")},
                 cluster_config={"runner": {"max_restarts": 2}}, instances={"i1": ring_instance("i1", ["a"])},
                 last_event_applied_idx=idx)


def test_the_view_keeps_desired_state_only_and_a_cold_seed_restarts_deployments():
    view = durable_view(full_state())
    assert not view.instances and set(view.deployments) == {"d1", "d2"} and set(view.api_keys) == {"k1"}
    seed = cold_seed(view)
    assert seed.deployments["d1"].status == S.pending and "restart" in seed.deployments["d1"].reason
    assert seed.deployments["d2"].status == S.failed and seed.deployments["d2"].reason == "boom"  # a failure stays


def test_a_new_masters_seed_carries_deployments_keys_and_projects():
    seed = seed_state_for_new_session(full_state(), T0)
    assert set(seed.deployments) == {"d1", "d2"} and set(seed.api_keys) == {"k1"} and set(seed.projects) == {"team"}


def test_written_on_change_only_read_back_and_never_emptied_by_a_node_that_follows_nothing(tmp_path):
    path = tmp_path / "durable_state.json"
    current = {"state": State()}
    store = DurableState(path, lambda: current["state"])

    async def main():
        assert not await store.save_if_changed()  # not following a session: nothing is written
        current["state"] = full_state()
        assert await store.save_if_changed()
        assert not await store.save_if_changed()  # unchanged
        current["state"] = current["state"].model_copy(update={"projects": {}})
        assert await store.save_if_changed()

    trio.run(main)
    assert oct(os.stat(path).st_mode & 0o777) == "0o600"  # key hashes inside
    saved = store.load()
    assert set(saved.deployments) == {"d1", "d2"} and not saved.projects and not saved.instances
    fresh = DurableState(path, lambda: State())
    assert fresh.seed_for_cold_master(State(last_event_applied_idx=3)) is None  # it follows a cluster already
    seed = fresh.seed_for_cold_master(State())
    assert seed.deployments["d1"].status == S.pending and set(seed.api_keys) == {"k1"}

    async def empty_master_started_the_cluster():
        replica = DurableState(path, lambda: State(last_event_applied_idx=0))
        assert not await replica.save_if_changed()

    trio.run(empty_master_started_the_cluster)
    assert set(DurableState(path, State).load().deployments) == {"d1", "d2"}  # our copy survives


def test_a_damaged_file_is_counted_and_ignored(tmp_path):
    path = tmp_path / "durable_state.json"
    path.write_text("{not json")
    assert DurableState(path, State).load() is None
    path.write_text('{"format": 99, "state": {}}')
    assert DurableState(path, State).load() is None
    assert DurableState(tmp_path / "missing.json", State).seed_for_cold_master(State()) is None
