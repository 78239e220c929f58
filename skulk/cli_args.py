"""Command-line flags of `skulk`, parsed into Settings on top of skulk.yaml and SKULK_* env.

Only flags actually given override: argparse defaults are suppressed so an absent flag
never hides a value from the file or the environment.
"""

import argparse
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from skulk import __version__
from skulk.config import Settings, iter_fields, load_settings

FlagKind = Literal["value", "set_true", "set_false"]


@dataclass(frozen=True)
class CliFlag:
    """One flag that sets one Settings key (dotted, e.g. "cluster.namespace")."""

    names: tuple[str, ...]
    key: str
    kind: FlagKind = "value"
    metavar: str | None = None
    help: str | None = None  # None: the key's description from the Settings model

    @property
    def label(self) -> str:
        """The long name, used in error messages: '--api-port'."""
        return self.names[-1]


CLI_FLAGS: tuple[CliFlag, ...] = (
    CliFlag(("--node-name",), "node_name", metavar="NAME"),
    CliFlag(("--api-host",), "api_host", metavar="HOST"),
    CliFlag(("--api-port",), "api_port", metavar="PORT"),
    CliFlag(("--libp2p-port",), "libp2p_port", metavar="PORT"),
    CliFlag(
        ("--bootstrap-peers",),
        "bootstrap_peers",
        metavar="ADDRS",
        help="Comma-separated multiaddrs of peers to dial at startup.",
    ),
    CliFlag(("-m", "--force-master"), "force_master", "set_true"),
    CliFlag(("--no-worker",), "no_worker", "set_true"),
    CliFlag(("--no-api",), "no_api", "set_true"),
    CliFlag(("--offline",), "offline", "set_true"),
    CliFlag(
        ("--home",),
        "home",
        metavar="DIR",
        help="Node home directory for keys, logs, event logs and models.",
    ),
    CliFlag(("--namespace",), "cluster.namespace", metavar="NAME"),
    CliFlag(
        ("--cluster-secret",),
        "cluster.secret",
        metavar="SECRET",
        help="Shared cluster secret (other local users can read a command line: prefer "
        "--cluster-secret-file or SKULK_CLUSTER__SECRET).",
    ),
    CliFlag(("--cluster-secret-file",), "cluster.secret_file", metavar="PATH"),
    CliFlag(("--no-mdns",), "discovery.mdns", "set_false", help="Do not find peers with mDNS."),
    CliFlag(("--dashboard-base-path",), "dashboard_base_path", metavar="PATH"),
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="skulk",
        description="Run a Skulk node: pool machines and serve LLMs behind one API.",
        epilog="`skulk secret` prints a new random cluster secret and exits.",
        argument_default=argparse.SUPPRESS,
        allow_abbrev=False,  # abbreviations would break as flags are added
    )
    parser.add_argument(
        "--config",
        type=Path,
        metavar="PATH",
        help="YAML config file (default: ./skulk.yaml, optional unless given).",
    )
    descriptions = {entry.dotted: entry.info.description for entry in iter_fields()}
    for flag in CLI_FLAGS:
        help_text = flag.help or descriptions.get(flag.key)
        if flag.kind == "value":
            parser.add_argument(*flag.names, dest=flag.key, metavar=flag.metavar, help=help_text)
        else:
            action = "store_true" if flag.kind == "set_true" else "store_false"
            parser.add_argument(*flag.names, dest=flag.key, action=action, help=help_text)
    parser.add_argument(
        "-v", "--verbose", action="count", help="More log detail (repeat: -vv)."
    )
    parser.add_argument("-q", "--quiet", action="count", help="Less log detail.")
    parser.add_argument("--version", action="version", version=f"skulk {__version__}")
    return parser


def parse_cli(argv: list[str], env: Mapping[str, str]) -> Settings:
    """Settings from argv (without the program name), `env` and the config file.

    Raises ConfigError for a bad value; argparse itself exits 2 on unknown flags.
    """
    given = vars(build_parser().parse_args(argv))
    config_path: Path | None = given.pop("config", None)
    verbosity_change = given.pop("verbose", 0) - given.pop("quiet", 0)
    if "home" in given:
        # A directory typed on the command line means what the shell means: from the cwd.
        given["home"] = str(Path(given["home"]).expanduser().absolute())
    if "cluster.secret_file" in given:
        given["cluster.secret_file"] = str(Path(given["cluster.secret_file"]).expanduser().absolute())
    labels = {flag.key: flag.label for flag in CLI_FLAGS}
    settings = load_settings(config_path, env, given, override_labels=labels)
    if verbosity_change:
        # -v/-q adjust whatever the file or env set, rather than replacing it.
        settings = settings.model_copy(
            update={"verbosity": settings.verbosity + verbosity_change}
        )
    return settings
