"""Start real `skulk` node processes on 127.0.0.1, each with its own ports and home."""

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import httpx


@cache
def http() -> httpx.Client:
    """One client for all polling: httpx.get() builds a client and SSL context per call, ~25 ms of
    CPU that wait_until loops would take from the nodes they wait for. No keep-alive: nodes restart."""
    return httpx.Client(trust_env=False, limits=httpx.Limits(max_keepalive_connections=0))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate: Callable[[], Any], timeout: float, interval: float = 0.05, message: str = "") -> Any:
    """Poll `predicate` until it returns something truthy; raise TimeoutError at the deadline."""
    deadline = time.monotonic() + timeout
    last_exc: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except Exception as exc:  # noqa: BLE001 - the condition may not be observable yet
            last_exc = exc
        time.sleep(interval)
    raise TimeoutError(f"condition not met within {timeout}s: {message} (last error: {last_exc})")


@dataclass
class NodeProcess:
    name: str
    home: Path
    api_port: int
    libp2p_port: int
    args: list[str]
    env: dict[str, str]
    proc: subprocess.Popen | None = None
    log_path: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def peer_addr(self) -> str:
        return f"127.0.0.1:{self.libp2p_port}"

    def start(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        self.log_path = self.home / "node.log"
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "skulk", *self.args], env=self.env,
                                     stdout=log, stderr=subprocess.STDOUT, cwd=self.home,
                                     start_new_session=True)
        log.close()

    def get(self, path: str, timeout: float = 3.0) -> Any:
        resp = http().get(self.url + path, timeout=timeout)
        resp.raise_for_status()
        return resp.json()

    def post(self, path: str, body: Any, timeout: float = 10.0) -> httpx.Response:
        return http().post(self.url + path, json=body, timeout=timeout)

    def delete(self, path: str, timeout: float = 10.0) -> httpx.Response:
        return http().delete(self.url + path, timeout=timeout)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Signal the node's whole process group (its runners too) and reap it."""
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def log_tail(self, n: int = 60) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])


PORT_BUSY_EXIT = 75  # skulk's exit status when its API or libp2p port is taken


def _move_ports(node: NodeProcess) -> None:
    """New free ports for a node that could not bind (nodes started later bootstrap to the new one)."""
    node.api_port, node.libp2p_port = free_port(), free_port()
    for flag, port in (("--api-port", node.api_port), ("--libp2p-port", node.libp2p_port)):
        node.args[node.args.index(flag) + 1] = str(port)


@dataclass
class LocalCluster:
    root: Path
    extra_env: dict[str, str] = field(default_factory=dict)
    nodes: list[NodeProcess] = field(default_factory=list)

    def add_node(self, name: str, *, bootstrap: list[str] | None = None, extra_args: list[str] = (),
                 namespace: str = "skulk-test", home: Path | None = None, start: bool = True) -> NodeProcess:
        bootstrap = [n.peer_addr for n in self.nodes] if bootstrap is None else bootstrap
        api_port, p2p_port = free_port(), free_port()
        args = ["--home", str(home or self.root / name), "--api-port", str(api_port),
                "--libp2p-port", str(p2p_port), "--node-name", name, "--namespace", namespace,
                "--no-mdns", *extra_args]
        if bootstrap:
            args += ["--bootstrap-peers", ",".join(bootstrap)]
        env = {**os.environ, "SKULK_LIBP2P_HOST": "127.0.0.1", "SKULK_DEBUG_ROUTES": "1",
               "PYTHONUNBUFFERED": "1", **self.extra_env}
        node = NodeProcess(name, home or self.root / name, api_port, p2p_port, args, env)
        self.nodes.append(node)
        if start:
            node.start()
        return node

    def wait_ready(self, node: NodeProcess, timeout: float = 30.0) -> None:
        retries = [3]

        def ready():
            if not node.alive():
                if node.proc is not None and node.proc.returncode == PORT_BUSY_EXIT and retries[0] > 0:
                    retries[0] -= 1  # free_port() raced another process for the port: take new ones
                    _move_ports(node)
                    node.start()
                    return None
                raise RuntimeError(f"{node.name} exited:\n{node.log_tail()}")
            return node.get("/node_id")
        wait_until(ready, timeout, message=f"{node.name} API up")

    def stop_all(self) -> None:
        for node in self.nodes:
            node.kill(signal.SIGTERM)
        for node in self.nodes:
            node.kill(signal.SIGKILL)
