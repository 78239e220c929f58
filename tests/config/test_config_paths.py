"""NodePaths and the node name: where a node keeps its files, and what it is called."""

from pathlib import Path

from skulk.config import Settings, load_settings, resolve_node_name, resolve_paths


def test_default_home_is_dot_skulk(tmp_path: Path) -> None:
    paths = resolve_paths(Settings(), {}, user_home=tmp_path)
    home = tmp_path / ".skulk"
    assert paths.home == home
    assert paths.identity_key_file == home / "node_id.key"
    assert paths.logs_dir == home / "logs"
    assert paths.runner_logs_dir == home / "logs" / "runners"
    assert paths.event_log_dir == home / "event_log"
    assert paths.models_dir == home / "models"
    assert paths.custom_model_cards_dir == home / "custom_model_cards"
    assert paths.traces_dir == home / "traces"
    assert paths.extra_model_dirs == ()


def test_skulk_home_env_moves_everything(tmp_path: Path) -> None:
    env = {"SKULK_HOME": str(tmp_path / "node-a")}
    paths = resolve_paths(Settings(), env, user_home=Path("/unused"))
    assert paths.home == tmp_path / "node-a"
    assert paths.identity_key_file == tmp_path / "node-a" / "node_id.key"
    assert paths.models_dir == tmp_path / "node-a" / "models"


def test_skulk_home_through_load_settings(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    env = {"SKULK_HOME": str(tmp_path / "via-env")}
    paths = resolve_paths(load_settings(None, env), env, user_home=Path("/unused"))
    assert paths.event_log_dir == tmp_path / "via-env" / "event_log"


def test_home_setting_beats_skulk_home(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "configured")
    paths = resolve_paths(settings, {"SKULK_HOME": "/elsewhere"}, user_home=tmp_path)
    assert paths.home == tmp_path / "configured"


def test_relative_and_tilde_homes_hang_off_the_user_home(tmp_path: Path) -> None:
    relative = resolve_paths(Settings(), {"SKULK_HOME": "cluster-a"}, tmp_path)
    assert relative.home == tmp_path / "cluster-a"
    assert resolve_paths(Settings(home=Path("~/b")), {}, tmp_path).home == tmp_path / "b"


def test_models_dir_and_search_path_overrides(tmp_path: Path) -> None:
    env = {
        "SKULK_HOME": str(tmp_path / "home"),
        "SKULK_MODELS_DIR": str(tmp_path / "big-disk"),
        "SKULK_MODELS_PATH": f"/mnt/a::relative/b:{tmp_path}/c",
    }
    paths = resolve_paths(Settings(), env, user_home=tmp_path)
    assert paths.models_dir == tmp_path / "big-disk"
    assert paths.custom_model_cards_dir == tmp_path / "home" / "custom_model_cards"
    assert paths.extra_model_dirs == (Path("/mnt/a"), tmp_path / "relative" / "b", tmp_path / "c")


def test_node_name_defaults_to_hostname() -> None:
    assert resolve_node_name(Settings(), hostname="box-1") == "box-1"
    assert resolve_node_name(Settings(node_name="studio"), hostname="box-1") == "studio"
    assert resolve_node_name(Settings())  # the real hostname, whatever it is
