"""`skulk` entry point: parse config, set up logging, run one node until interrupted."""

import logging
import os
import resource
import signal
import sys

import trio

from skulk.errors import ConfigError


def _configure_logging(verbosity: int) -> None:
    level = logging.INFO if verbosity == 0 else logging.DEBUG if verbosity > 0 else logging.WARNING
    root = logging.getLogger()
    for handler in list(root.handlers):  # libp2p installs its own stderr handler on import
        root.removeHandler(handler)
    logging.basicConfig(level=level, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if verbosity < 2:
        for noisy in ("libp2p", "multiaddr", "hypercorn", "httpx", "httpcore", "zeroconf", "async_service"):
            logging.getLogger(noisy).setLevel(logging.WARNING if verbosity >= 0 else logging.ERROR)


def _raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = min(max(soft, 65535), hard)
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def main(argv: list[str] | None = None) -> int:
    from skulk.cli_args import parse_cli
    from skulk.config import resolve_paths

    try:
        settings = parse_cli(sys.argv[1:] if argv is None else argv, os.environ)
        paths = resolve_paths(settings, os.environ)
    except ConfigError as exc:
        print(f"skulk: config error: {exc.message}", file=sys.stderr)
        return 2
    _configure_logging(settings.verbosity)
    _raise_fd_limit()
    paths.home.mkdir(parents=True, exist_ok=True)
    try:
        trio.run(_run, settings, paths)
    except KeyboardInterrupt:
        return 0
    return 0


async def _run(settings, paths) -> None:
    from skulk.app import Node

    node = Node(settings, paths)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_cancel_on_signal, nursery.cancel_scope)
        await node.run()


async def _cancel_on_signal(scope: trio.CancelScope) -> None:
    """SIGTERM/SIGINT cancel the node so its services (and runner processes) shut down."""
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async for _ in signals:
            logging.getLogger("skulk").info("shutting down")
            scope.cancel()
            return


if __name__ == "__main__":
    sys.exit(main())
