"""cluster.secret and cluster.secret_file: where they are read from, and where they never go."""

import stat
from pathlib import Path

import pytest
import yaml

from skulk.cli_args import parse_cli
from skulk.config import load_settings, sanitized_yaml_dict
from skulk.config.render import keep_secrets, redacted_argv, without_secrets
from skulk.config.sync import cluster_part, merge_cluster_part, write_config_file
from skulk.errors import ConfigError


def test_secret_from_yaml_env_and_flag_in_precedence_order(write_yaml) -> None:
    write_yaml("cluster:\n  secret: from-file\n")
    assert load_settings(None, {}).cluster.secret == "from-file"
    env = {"SKULK_CLUSTER__SECRET": "from-env"}
    assert load_settings(None, env).cluster.secret == "from-env"
    assert parse_cli(["--cluster-secret", "from-flag"], env).cluster.secret == "from-flag"


def test_no_secret_by_default(workdir: Path) -> None:
    settings = load_settings(None, {})
    assert settings.cluster.secret is None and settings.cluster.secret_file is None


def test_secret_file_is_read_and_stripped(write_yaml, workdir: Path) -> None:
    (workdir / "cluster.secret").write_text("  s3cret-value\n\n")
    write_yaml(f"cluster:\n  secret_file: {workdir / 'cluster.secret'}\n")
    assert load_settings(None, {}).cluster.secret == "s3cret-value"
    # The flag takes a path relative to the shell's directory.
    settings = parse_cli(["--cluster-secret-file", "cluster.secret"], {})
    assert settings.cluster.secret == "s3cret-value"
    assert settings.cluster.secret_file == workdir / "cluster.secret"


def test_an_explicit_secret_wins_over_the_file(write_yaml, workdir: Path) -> None:
    write_yaml("cluster:\n  secret_file: /nonexistent/cluster.secret\n")
    assert load_settings(None, {"SKULK_CLUSTER__SECRET": "direct"}).cluster.secret == "direct"


def test_a_missing_or_empty_secret_file_is_a_one_line_error(write_yaml, workdir: Path) -> None:
    write_yaml("cluster:\n  secret_file: /nonexistent/cluster.secret\n")
    with pytest.raises(ConfigError) as missing:
        load_settings(None, {})
    message = missing.value.message
    assert "\n" not in message and "cluster.secret_file" in message and "/nonexistent/cluster.secret" in message
    assert "No such file" in message and message.startswith("skulk.yaml: ")
    (workdir / "empty").write_text(" \n")
    with pytest.raises(ConfigError, match="SKULK_CLUSTER__SECRET_FILE: .*empty.* is empty"):
        load_settings(None, {"SKULK_CLUSTER__SECRET_FILE": str(workdir / "empty")})


def test_a_bad_secret_value_is_never_echoed(write_yaml) -> None:
    write_yaml("cluster:\n  secret: 918273645\n")  # a number, not a string
    with pytest.raises(ConfigError) as exc:
        load_settings(None, {})
    assert "cluster.secret" in exc.value.message and "918273645" not in exc.value.message
    write_yaml("cluster:\n  secret: ''\n")
    with pytest.raises(ConfigError, match="cluster.secret"):
        load_settings(None, {})


def test_the_secret_is_redacted_for_people_and_never_synced(workdir: Path) -> None:
    settings = load_settings(None, {"SKULK_CLUSTER__SECRET": "hunter2-secret", "SKULK_HF_TOKEN": "hf_x"})
    shown = sanitized_yaml_dict(settings)
    assert "hunter2-secret" not in yaml.safe_dump(shown) and "hf_x" not in yaml.safe_dump(shown)
    assert shown["cluster"] == {"namespace": "skulk-default", "secret_file": None}
    file_values = {"cluster": {"namespace": "lab", "secret": "hunter2-secret"}, "hf_token": "hf_x",
                   "inference": {"max_concurrent_requests": 2}}
    assert cluster_part(file_values) == {"inference": {"max_concurrent_requests": 2}}
    # An incoming cluster config can neither carry nor overwrite this node's secret.
    merged = merge_cluster_part(file_values, {"cluster": {"secret": "theirs"}, "inference": {}})
    assert merged["cluster"] == {"namespace": "lab", "secret": "hunter2-secret"}


def test_secrets_are_write_only_through_the_helpers() -> None:
    old = {"hf_token": "t", "cluster": {"namespace": "lab", "secret": "s"}}
    shown = without_secrets(old)
    assert shown == {"cluster": {"namespace": "lab"}} and old["cluster"]["secret"] == "s"  # a copy
    assert keep_secrets(shown, old) == old  # saving what was shown keeps both secrets
    assert keep_secrets({"cluster": {"secret": None}}, old)["cluster"] == {"secret": None}  # explicit clear
    assert keep_secrets({"cluster": {"secret": "new"}}, old)["cluster"]["secret"] == "new"


def test_a_file_holding_the_secret_is_private(workdir: Path) -> None:
    path = workdir / "skulk.yaml"
    write_config_file(path, {"cluster": {"secret": "s"}})
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    write_config_file(path, {"cluster": {"namespace": "lab"}})
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_argv_shown_in_diagnostics_hides_the_flag_value() -> None:
    argv = ["skulk", "--cluster-secret", "abc", "--namespace", "lab", "--cluster-secret=xyz"]
    assert redacted_argv(argv) == ["skulk", "--cluster-secret", "<redacted>", "--namespace", "lab",
                                   "--cluster-secret=<redacted>"]
