"""load_settings: defaults, zero-config, and yaml < env < overrides."""

from pathlib import Path

import pytest

from skulk.config import Settings, load_settings, sanitized_yaml_dict
from skulk.errors import ConfigError


def test_defaults_match_the_reference(workdir: Path) -> None:
    settings = load_settings(None, {}, {})
    assert settings == Settings()
    assert settings.node_name is None
    assert (settings.api_host, settings.api_port) == ("127.0.0.1", 52415)
    assert (settings.libp2p_host, settings.libp2p_port) == ("0.0.0.0", 52416)
    assert settings.bootstrap_peers == ()
    assert not (settings.force_master or settings.no_worker or settings.no_api or settings.offline)
    assert settings.home is None
    assert settings.verbosity == 0
    assert settings.node_timeout_seconds == 30.0
    assert settings.dashboard_base_path == ""
    assert settings.cluster.namespace == "skulk-default"
    assert settings.discovery.mdns is True
    assert settings.default_model.model_id == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert settings.default_model.auto_place is True
    assert settings.model_store is None
    assert settings.inference.kv_cache_backend == "default"
    assert settings.inference.max_concurrent_requests == 8
    assert (settings.logging.enabled, settings.logging.ingest_url) == (False, "")
    assert settings.tracing.retention_days == 3
    assert settings.hf_token is None


def test_settings_are_frozen() -> None:
    with pytest.raises(Exception):
        Settings().api_port = 1  # type: ignore[misc]


def test_missing_default_file_is_zero_config(workdir: Path) -> None:
    assert load_settings(None, {}) == Settings()


@pytest.mark.parametrize("text", ["", "\n", "# only a comment\n"])
def test_empty_file_is_zero_config(write_yaml, text: str) -> None:
    path = write_yaml(text)
    assert load_settings(path, {}) == Settings()
    assert load_settings(None, {}) == Settings()


def test_default_path_is_read_from_cwd(write_yaml) -> None:
    write_yaml("api_port: 9000\n")
    assert load_settings(None, {}).api_port == 9000


def test_explicit_file_overrides_default_location(write_yaml) -> None:
    write_yaml("api_port: 9000\n")
    other = write_yaml("api_port: 9001\n", name="other.yaml")
    assert load_settings(other, {}).api_port == 9001


def test_legacy_exo_yaml_alone_is_refused(write_yaml) -> None:
    write_yaml("api_port: 9000\n", name="exo.yaml")
    with pytest.raises(ConfigError, match="rename it to skulk.yaml"):
        load_settings(None, {})


def test_precedence_yaml_then_env_then_override(write_yaml) -> None:
    path = write_yaml("api_port: 1000\nlibp2p_port: 1001\nnode_name: from-yaml\n")
    env = {"SKULK_API_PORT": "2000", "SKULK_LIBP2P_PORT": "2001"}
    settings = load_settings(path, env, {"api_port": 3000})
    assert settings.api_port == 3000  # override beats env and yaml
    assert settings.libp2p_port == 2001  # env beats yaml
    assert settings.node_name == "from-yaml"  # yaml beats the default


def test_nested_keys_merge_across_layers(write_yaml) -> None:
    path = write_yaml("default_model:\n  model_id: org/yaml-model\n  auto_place: false\n")
    env = {"SKULK_DEFAULT_MODEL__AUTO_PLACE": "true", "SKULK_DISCOVERY__MDNS": "false"}
    settings = load_settings(path, env, {"cluster.namespace": "flag-ns"})
    assert settings.default_model.model_id == "org/yaml-model"
    assert settings.default_model.auto_place is True
    assert settings.discovery.mdns is False
    assert settings.cluster.namespace == "flag-ns"


def test_overrides_accept_nested_dicts(workdir: Path) -> None:
    settings = load_settings(None, {}, {"cluster": {"namespace": "nested"}})
    assert settings.cluster.namespace == "nested"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("bootstrap_peers:\n  - /ip4/10.0.0.2/tcp/52416\n  - /ip4/10.0.0.3/tcp/52416\n", 2),
        ("bootstrap_peers: /ip4/10.0.0.2/tcp/52416, /ip4/10.0.0.3/tcp/52416\n", 2),
        ("bootstrap_peers: []\n", 0),
    ],
)
def test_bootstrap_peers_from_yaml(write_yaml, text: str, expected: int) -> None:
    peers = load_settings(write_yaml(text), {}).bootstrap_peers
    assert len(peers) == expected
    assert all(peer.startswith("/ip4/10.0.0.") for peer in peers)


def test_bootstrap_peers_comma_separated_in_env(workdir: Path) -> None:
    env = {"SKULK_BOOTSTRAP_PEERS": " /ip4/1.2.3.4/tcp/1 ,/ip4/5.6.7.8/tcp/2,, "}
    assert load_settings(None, env).bootstrap_peers == ("/ip4/1.2.3.4/tcp/1", "/ip4/5.6.7.8/tcp/2")


@pytest.mark.parametrize(("raw", "expected"), [("1", True), ("true", True), ("yes", True),
                                               ("0", False), ("false", False), ("off", False)])
def test_env_booleans(workdir: Path, raw: str, expected: bool) -> None:
    assert load_settings(None, {"SKULK_OFFLINE": raw}).offline is expected


def test_unrelated_skulk_env_vars_are_ignored(workdir: Path) -> None:
    env = {
        "SKULK_WARMUP_DEADLINE_SECONDS": "5",
        "SKULK_NO_BATCH": "1",
        "SKULK_ZENOH_LISTEN": "tcp/0.0.0.0:7447",
        "SKULK_MODELS_DIR": "/models",
        "SKULK_API_PORT_TYPO": "1",
        "skulk_api_port": "1",
        "HOME": "/home/someone",
    }
    assert load_settings(None, env) == Settings()


def test_empty_env_var_counts_as_unset(write_yaml) -> None:
    path = write_yaml("api_port: 1234\n")
    assert load_settings(path, {"SKULK_API_PORT": "", "SKULK_HOME": ""}).api_port == 1234


def test_legacy_namespace_env_name(workdir: Path) -> None:
    assert load_settings(None, {"SKULK_LIBP2P_NAMESPACE": "old"}).cluster.namespace == "old"
    both = {"SKULK_LIBP2P_NAMESPACE": "old", "SKULK_CLUSTER__NAMESPACE": "new"}
    assert load_settings(None, both).cluster.namespace == "new"


def test_env_paths_and_secrets(workdir: Path) -> None:
    env = {"SKULK_HOME": "/srv/skulk", "SKULK_HF_TOKEN": "hf_abc"}
    settings = load_settings(None, env)
    assert settings.home == Path("/srv/skulk")
    assert settings.hf_token == "hf_abc"


def test_section_with_every_key_commented_out_is_empty(write_yaml) -> None:
    path = write_yaml("cluster:\n  # namespace: x\ndiscovery:\nmodel_store:\n")
    assert load_settings(path, {}) == Settings()


def test_model_store_section(write_yaml) -> None:
    path = write_yaml(
        "model_store:\n"
        "  store_host: studio.local\n"
        "  store_path: /Volumes/models\n"
        "  staging:\n"
        "    staging_keep_recent_gb: 20\n"
        "  node_overrides:\n"
        "    laptop:\n"
        "      staging:\n"
        "        staging_keep_recent_gb: 5\n"
        "        cleanup_on_deactivate: false\n"
    )
    store = load_settings(path, {"SKULK_MODEL_STORE__STORE_PORT": "9999"}).model_store
    assert store is not None
    assert (store.enabled, store.store_host, store.store_port) == (True, "studio.local", 9999)
    assert store.store_http_host is None
    assert store.download.allow_hf_fallback is True
    assert store.staging.node_cache_path == Path("~/.skulk/staging")
    assert store.staging.staging_keep_recent_gb == 20
    laptop = store.staging_for("12D3KooWxyz", "laptop")
    assert (laptop.staging_keep_recent_gb, laptop.cleanup_on_deactivate) == (5, False)
    assert laptop.enabled is True  # not overridden: taken from the base section
    assert store.staging_for("desktop") == store.staging


def test_sanitized_dict_drops_the_token_and_is_plain_yaml(workdir: Path) -> None:
    import yaml

    settings = load_settings(None, {"SKULK_HF_TOKEN": "hf_secret", "SKULK_HOME": "/srv/skulk"})
    shown = sanitized_yaml_dict(settings)
    assert "hf_token" not in shown
    assert shown["home"] == "/srv/skulk"
    assert shown["bootstrap_peers"] == []
    assert shown["cluster"] == {"namespace": "skulk-default", "secret_file": None}
    assert "hf_secret" not in yaml.safe_dump(shown)
    # What GET /config shows loads back as the same settings, less the token.
    assert Settings.model_validate(shown) == settings.model_copy(update={"hf_token": None})
