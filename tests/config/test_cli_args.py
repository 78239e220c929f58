"""parse_cli: flags override env and file, and only the flags actually given."""

from pathlib import Path

import pytest

from skulk.cli_args import CLI_FLAGS, build_parser, parse_cli
from skulk.config import Settings, iter_fields
from skulk.errors import ConfigError


def test_no_flags_gives_defaults(workdir: Path) -> None:
    assert parse_cli([], {}) == Settings()


def test_absent_flags_do_not_clobber_yaml_or_env(write_yaml) -> None:
    write_yaml("api_port: 1000\noffline: true\ndiscovery: {mdns: false}\nverbosity: 2\n")
    settings = parse_cli([], {"SKULK_NO_WORKER": "true"})
    assert settings.api_port == 1000
    assert settings.offline is True
    assert settings.discovery.mdns is False
    assert settings.no_worker is True
    assert settings.verbosity == 2


def test_flag_beats_env_beats_yaml(write_yaml) -> None:
    write_yaml("api_port: 1000\nlibp2p_port: 1001\napi_host: 10.0.0.1\n")
    env = {"SKULK_API_PORT": "2000", "SKULK_LIBP2P_PORT": "2001"}
    settings = parse_cli(["--api-port", "3000"], env)
    assert (settings.api_port, settings.libp2p_port, settings.api_host) == (3000, 2001, "10.0.0.1")


def test_every_flag(workdir: Path) -> None:
    argv = [
        "--api-port", "8000", "--api-host", "0.0.0.0", "--libp2p-port", "0",
        "--bootstrap-peers", "/ip4/1.1.1.1/tcp/1,/ip4/2.2.2.2/tcp/2",
        "-m", "--no-worker", "--no-api", "--offline", "--home", "/srv/skulk",
        "--node-name", "n1", "--namespace", "lab", "--no-mdns",
        "--dashboard-base-path", "/skulk",
    ]
    settings = parse_cli(argv, {})
    assert settings.api_port == 8000 and settings.api_host == "0.0.0.0"
    assert settings.libp2p_port == 0
    assert settings.bootstrap_peers == ("/ip4/1.1.1.1/tcp/1", "/ip4/2.2.2.2/tcp/2")
    assert settings.force_master and settings.no_worker and settings.no_api and settings.offline
    assert settings.home == Path("/srv/skulk")
    assert settings.node_name == "n1"
    assert settings.cluster.namespace == "lab"
    assert settings.discovery.mdns is False
    assert settings.dashboard_base_path == "/skulk"


def test_long_force_master(workdir: Path) -> None:
    assert parse_cli(["--force-master"], {}).force_master is True


def test_relative_home_flag_is_from_cwd(workdir: Path) -> None:
    assert parse_cli(["--home", "state"], {}).home == workdir / "state"


@pytest.mark.parametrize(
    ("argv", "configured", "expected"),
    [(["-v"], 0, 1), (["-vv"], 0, 2), (["-q"], 0, -1), (["-vvv", "-q"], 1, 3), ([], 2, 2)],
)
def test_verbosity_counts_from_the_configured_value(write_yaml, argv, configured, expected) -> None:
    write_yaml(f"verbosity: {configured}\n")
    assert parse_cli(argv, {}).verbosity == expected


def test_config_flag_reads_that_file(write_yaml) -> None:
    write_yaml("api_port: 1000\n")
    other = write_yaml("api_port: 2000\n", name="node-b.yaml")
    assert parse_cli(["--config", str(other)], {}).api_port == 2000


def test_config_flag_with_missing_file_is_an_error(workdir: Path) -> None:
    with pytest.raises(ConfigError, match="^missing.yaml: config file not found$"):
        parse_cli(["--config", "missing.yaml"], {})


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--api-port", "70000"],
         "--api-port: Input should be less than or equal to 65535 (got '70000')"),
        (["--api-port", "web"], "--api-port: Input should be a valid integer"),
        (["--libp2p-port", "-3"], "--libp2p-port: Input should be greater than or equal to 0"),
    ],
)
def test_bad_flag_value_names_the_flag(workdir: Path, argv: list[str], expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_cli(argv, {})
    assert "\n" not in caught.value.message
    assert caught.value.message.startswith(expected)


def test_unknown_flag_exits_2(workdir: Path, capsys) -> None:
    with pytest.raises(SystemExit) as exited:
        parse_cli(["--api-prot", "1"], {})
    assert exited.value.code == 2


def test_version_exits_0(workdir: Path, capsys) -> None:
    with pytest.raises(SystemExit) as exited:
        parse_cli(["--version"], {})
    assert exited.value.code == 0
    assert capsys.readouterr().out.startswith("skulk ")


def test_every_flag_targets_a_real_key() -> None:
    keys = {entry.dotted for entry in iter_fields()}
    assert all(flag.key in keys for flag in CLI_FLAGS)
    assert "--api-port" in build_parser().format_help()
