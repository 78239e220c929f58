"""`skulk` entry point: parse config, set up logging, run one node until interrupted."""

import errno
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

    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["secret"]:
        return _print_new_secret(args[1:])
    try:
        settings = parse_cli(args, os.environ)
        paths = resolve_paths(settings, os.environ)
    except ConfigError as exc:
        print(f"skulk: config error: {exc.message}", file=sys.stderr)
        return 2
    _configure_logging(settings.verbosity)
    _raise_fd_limit()
    paths.home.mkdir(parents=True, exist_ok=True)
    try:
        node = trio.run(_run, settings, paths)
    except KeyboardInterrupt:
        return 0
    except BaseExceptionGroup as group:
        fatal = _startup_error(group)
        if fatal is None:
            raise
        print(f"skulk: {fatal}", file=sys.stderr)
        return 75
    if node.ops.restart_pending:  # POST /admin/restart: services are stopped, become a fresh process
        node.ops.restarter.exec_now()
    return 0


def _print_new_secret(rest: list[str]) -> int:
    """`skulk secret`: a new random cluster secret on stdout, e.g. for cluster.secret_file."""
    import secrets

    if rest:
        print(f"skulk secret: takes no arguments (got {' '.join(rest)})", file=sys.stderr)
        return 2
    print(secrets.token_urlsafe(32))
    return 0


def _startup_error(group: BaseExceptionGroup) -> str | None:
    """A clear line for the failures a user can fix (a port in use), else None."""
    from skulk.errors import SkulkError

    for exc in _leaves(group):
        if isinstance(exc, SkulkError):
            return exc.message
        if isinstance(exc, OSError) and exc.errno == errno.EADDRINUSE:
            return f"cannot start the API: {exc.strerror} (is another skulk running? use --api-port)"
    return None


def _leaves(exc: BaseException):
    if isinstance(exc, BaseExceptionGroup):
        for sub in exc.exceptions:
            yield from _leaves(sub)
    else:
        yield exc


async def _run(settings, paths):
    from skulk.app import Node

    node = Node(settings, paths)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_cancel_on_signal, nursery.cancel_scope, node.ops.restarter.abandon)
        await node.run()
        nursery.cancel_scope.cancel()  # the node stopped itself (a restart): stop waiting for signals
    return node


async def _cancel_on_signal(scope: trio.CancelScope, abandon_restart=lambda: None) -> None:
    """SIGTERM/SIGINT cancel the node so its services (and runner processes) shut down."""
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async for _ in signals:
            logging.getLogger("skulk").info("shutting down")
            abandon_restart()  # a stop request beats a pending restart
            scope.cancel()
            return


if __name__ == "__main__":
    sys.exit(main())
