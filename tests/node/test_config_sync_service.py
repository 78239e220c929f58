"""ConfigSync against a real file in a temp directory, with a stand-in for the event router."""

import logging

import yaml

from skulk.node.config_sync import ConfigSync
from skulk.types.state import State


class Router:
    def __init__(self):
        self.state = State()


def make(tmp_path, applied):
    router = Router()
    return router, ConfigSync(router, applied.append, path=lambda: tmp_path / "skulk.yaml")


def test_writes_the_merged_file_and_applies_live_keys(tmp_path):
    (tmp_path / "skulk.yaml").write_text("hf_token: mine\napi_port: 9000\ntracing:\n  retention_days: 1\n")
    applied = []
    router, sync = make(tmp_path, applied)
    sync.check()
    assert applied == [] and sync.counters["config_syncs"] == 0  # nothing replicated yet
    router.state = State(cluster_config={"logging": {"enabled": True}})
    sync.check()
    on_disk = yaml.safe_load((tmp_path / "skulk.yaml").read_text())
    assert on_disk == {"hf_token": "mine", "api_port": 9000, "logging": {"enabled": True}}
    assert len(applied) == 1 and applied[0].logging.enabled and applied[0].hf_token == "mine"
    sync.check()  # same config again: nothing to do
    assert sync.counters == {"config_syncs": 1, "config_files_written": 1, "config_sync_errors": 0}


def test_leaves_a_matching_file_alone_but_still_applies(tmp_path):
    path = tmp_path / "skulk.yaml"
    path.write_text("logging:\n  enabled: true\n")
    before = path.stat().st_mtime_ns
    applied = []
    router, sync = make(tmp_path, applied)
    router.state = State(cluster_config={"logging": {"enabled": True}})
    sync.check()
    assert path.stat().st_mtime_ns == before and len(applied) == 1
    assert sync.counters["config_files_written"] == 0


def test_an_invalid_config_is_refused_and_the_file_kept(tmp_path, caplog):
    path = tmp_path / "skulk.yaml"
    path.write_text("api_port: 9000\n")
    applied = []
    router, sync = make(tmp_path, applied)
    router.state = State(cluster_config={"inference": {"kv_cache_backend": "nonsense"}})
    with caplog.at_level(logging.ERROR):
        sync.check()
    assert path.read_text() == "api_port: 9000\n" and applied == []
    assert sync.counters["config_sync_errors"] == 1 and "kv_cache_backend" in caplog.text


def test_restart_only_keys_are_logged(tmp_path, caplog):
    applied = []
    router, sync = make(tmp_path, applied)
    router.state = State(cluster_config={"default_model": {"auto_place": False}})
    with caplog.at_level(logging.WARNING):
        sync.check()
    assert "default_model.auto_place" in caplog.text and (tmp_path / "skulk.yaml").exists()
