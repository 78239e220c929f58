"""Every bad configuration becomes one ConfigError line naming its source and key."""

from pathlib import Path

import pytest

from skulk.config import load_settings
from skulk.errors import ConfigError


def _error_for_yaml(write_yaml, text: str) -> ConfigError:
    write_yaml(text)  # as ./skulk.yaml, read by default
    with pytest.raises(ConfigError) as caught:
        load_settings(None, {})
    return caught.value


def _assert_one_line(error: ConfigError) -> None:
    assert "\n" not in error.message
    assert str(error) == error.message


# (skulk.yaml text, start of the message after "skulk.yaml: ", ConfigError.param)
BAD_YAML_VALUES = [
    ("api_port: 70000", "api_port: Input should be less than or equal to 65535 (got 70000)",
     "api_port"),
    ("api_port: 0", "api_port: Input should be greater than or equal to 1", "api_port"),
    ("libp2p_port: -1", "libp2p_port: Input should be greater", "libp2p_port"),
    ("api_port: lots", "api_port: Input should be a valid integer", "api_port"),
    ("api_port: true", "api_port: Input should be a number, not a boolean", "api_port"),
    ("node_timeout_seconds: 0", "node_timeout_seconds: Input should be greater than 0",
     "node_timeout_seconds"),
    ("offline: perhaps", "offline: Input should be a valid boolean", "offline"),
    ("node_name: [a]", "node_name: Input should be a valid string", "node_name"),
    ("bootstrap_peers: [1]", "bootstrap_peers[0]: Input should be a valid string",
     "bootstrap_peers[0]"),
    ("discovery:\n  mdsn: false", "unknown key 'discovery.mdsn' (did you mean 'discovery.mdns'?)",
     "discovery.mdsn"),
    ("colour: blue", "unknown key 'colour'", "colour"),
    ("cluster: skulk", "cluster: Input should be a valid dictionary", "cluster"),
    ("inference:\n  kv_cache_backend: fast",
     "inference.kv_cache_backend: Input should be 'default'", "inference.kv_cache_backend"),
    ("model_store:\n  store_path: /m", "model_store.store_host: Field required",
     "model_store.store_host"),
    ("model_store: {store_host: h, store_path: /m, staging: {staging_keep_recent_gb: -1}}",
     "model_store.staging.staging_keep_recent_gb: Input should be greater than or equal to 0",
     "model_store.staging.staging_keep_recent_gb"),
    ("model_store: {store_host: h, store_path: /m, node_overrides: {n1: {staging: {size: 1}}}}",
     "unknown key 'model_store.node_overrides.n1.staging.size'",
     "model_store.node_overrides.n1.staging.size"),
]


@pytest.mark.parametrize(("text", "expected", "param"), BAD_YAML_VALUES)
def test_bad_value_in_yaml(write_yaml, text: str, expected: str, param: str) -> None:
    error = _error_for_yaml(write_yaml, text + "\n")
    _assert_one_line(error)
    assert error.message.startswith("skulk.yaml: " + expected)
    assert error.param == param


def test_several_problems_still_give_one_line(write_yaml) -> None:
    error = _error_for_yaml(write_yaml, "api_port: 70000\nlibp2p_port: -5\ncolour: blue\n")
    _assert_one_line(error)
    assert error.message.endswith("(and 2 more problems)")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("api_port: [1\n", "line 2, column 1: invalid YAML: expected ',' or ']'"),
        ("a: b: c\n", "line 1, column 5: invalid YAML: mapping values are not allowed"),
        ("api_port: 1\napi_port: 2\n",
         "line 2, column 1: invalid YAML: key 'api_port' given twice"),
        ("- api_port\n", "the top level must be a mapping of keys, got a list"),
        ("just words\n", "the top level must be a mapping of keys, got a str"),
    ],
)
def test_unreadable_yaml(write_yaml, text: str, expected: str) -> None:
    error = _error_for_yaml(write_yaml, text)
    _assert_one_line(error)
    assert error.message.startswith("skulk.yaml: " + expected)
    assert error.param == "config"


def test_explicit_missing_file(workdir: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(Path("nowhere.yaml"), {})
    assert caught.value.message == "nowhere.yaml: config file not found"


def test_file_that_is_a_directory(workdir: Path) -> None:
    (workdir / "conf.d").mkdir()
    with pytest.raises(ConfigError, match="^conf.d: cannot read config file"):
        load_settings(Path("conf.d"), {})


BAD_ENV_VALUES = [
    ({"SKULK_API_PORT": "70000"},
     "SKULK_API_PORT: Input should be less than or equal to 65535 (got '70000')", "api_port"),
    ({"SKULK_API_PORT": "http"}, "SKULK_API_PORT: Input should be a valid integer", "api_port"),
    ({"SKULK_DISCOVERY__MDNS": "maybe"}, "SKULK_DISCOVERY__MDNS: Input should be a valid boolean",
     "discovery.mdns"),
    ({"SKULK_NODE_TIMEOUT_SECONDS": "-1"},
     "SKULK_NODE_TIMEOUT_SECONDS: Input should be greater than 0", "node_timeout_seconds"),
    ({"SKULK_KV_CACHE_BACKEND": "zip"}, "SKULK_KV_CACHE_BACKEND: Input should be 'default'",
     "inference.kv_cache_backend"),
]


@pytest.mark.parametrize(("env", "expected", "param"), BAD_ENV_VALUES)
def test_bad_value_in_env(workdir: Path, env: dict[str, str], expected: str, param: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(None, env)
    _assert_one_line(caught.value)
    assert caught.value.message.startswith(expected)
    assert caught.value.param == param


def test_bad_env_value_is_blamed_on_env_not_on_the_file(write_yaml) -> None:
    path = write_yaml("api_port: 8000\n")
    with pytest.raises(ConfigError, match="^SKULK_API_PORT: "):
        load_settings(path, {"SKULK_API_PORT": "0"})


def test_bad_override_uses_its_label(workdir: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(None, {}, {"api_port": "x"}, override_labels={"api_port": "--api-port"})
    assert caught.value.message.startswith("--api-port: Input should be a valid integer")
    with pytest.raises(ConfigError, match="^api_port: "):
        load_settings(None, {}, {"api_port": "x"})
