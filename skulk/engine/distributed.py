"""Ring setup for MLX's distributed backend: hostfiles, per-rank environment, CPU pinning,
and a group init that fails instead of hanging.

mx.distributed.init() holds the GIL while the accepting rank waits in accept(), so a Python
watchdog thread cannot time it out. init_group therefore first meets its two ring neighbours
with plain sockets under the deadline (a clear GroupConnectTimeout when one never shows up),
and arms faulthandler's GIL-free timer as a backstop around the MLX call itself.
"""

import faulthandler
import json
import os
import socket
import struct
import sys
import threading
import time
from pathlib import Path
from typing import Any

from skulk.engine.errors import GroupConnectTimeout

OPENBLAS_CANDIDATES = (
    "/usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblas.so.0",
    "/usr/lib/x86_64-linux-gnu/libopenblas.so.0",
    "/usr/lib/aarch64-linux-gnu/openblas-pthread/libopenblas.so.0",
    "/usr/lib/aarch64-linux-gnu/libopenblas.so.0",
)
PLACEHOLDER = "198.51.100.1:0"  # TEST-NET-2: a rank that is neither us nor a neighbour
_HELLO = struct.Struct("!6sII")  # magic, sender rank, world size
_MAGIC = b"SKRING"
BACKSTOP_GRACE_S = 20.0  # MLX's own connect retries take up to ~15 s


# ----- hostfiles and environment -----

def free_local_ports(n: int, host: str = "127.0.0.1") -> list[int]:
    """n currently free TCP ports (for tests and single-machine rings)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind((host, 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def ring_entries(hosts: list[tuple[str, int]]) -> list[str]:
    """[(ip, port)] in rank order -> ["ip:port", ...]."""
    return [f"{ip}:{port}" for ip, port in hosts]


def rank_view(entries: list[str], rank: int, listen_host: str = "0.0.0.0") -> list[str]:
    """What one rank's hostfile holds: itself on listen_host, its neighbours, placeholders."""
    n = len(entries)
    view = []
    for r, entry in enumerate(entries):
        if r == rank:
            view.append(f"{listen_host}:{entry.rsplit(':', 1)[1]}")
        elif n <= 3 or r in ((rank - 1) % n, (rank + 1) % n):
            view.append(entry)
        else:
            view.append(PLACEHOLDER)
    return view


def write_hostfile(path: str | Path, entries: list[str]) -> Path:
    """MLX ring hostfile: one list of "IPv4:port" per rank, in rank order."""
    path = Path(path)
    path.write_text(json.dumps([[e] for e in entries]))
    return path


def find_openblas() -> str | None:
    return next((p for p in OPENBLAS_CANDIDATES if os.path.exists(p)), None)


def rank_env(
    hostfile: str | Path | None, rank: int, world_size: int, *,
    threads: int | None = None, base: dict[str, str] | None = None,
) -> dict[str, str]:
    """Environment for one rank's process; the BLAS preload must be set before it starts."""
    env = dict(os.environ if base is None else base)
    env.pop("MLX_HOSTFILE", None)
    env.pop("MLX_RANK", None)
    if world_size > 1:
        env["MLX_HOSTFILE"] = str(hostfile)
        env["MLX_RANK"] = str(rank)
    blas = find_openblas()
    if blas:
        preload = env.get("LD_PRELOAD", "")
        if blas not in preload.split():
            env["LD_PRELOAD"] = f"{blas} {preload}".strip()
    env["OPENBLAS_NUM_THREADS"] = str(threads or max(1, (os.cpu_count() or 1) // max(1, world_size)))
    return env


def plan_affinity(n_ranks: int, cpus: list[int] | None = None) -> list[set[int]]:
    """Split this machine's CPUs into n contiguous sets (shared round-robin when too few)."""
    available = sorted(cpus if cpus is not None else os.sched_getaffinity(0))
    if n_ranks <= len(available):
        size = len(available) // n_ranks
        return [set(available[i * size : (i + 1) * size]) for i in range(n_ranks)]
    return [{available[i % len(available)]} for i in range(n_ranks)]


def pin_to_cpus(cpus: set[int]) -> bool:
    """Pin this process (ring threads busy-poll, so ranks must not share cores). False if unsupported."""
    if not hasattr(os, "sched_setaffinity") or not cpus:
        return False
    os.sched_setaffinity(0, cpus)
    return True


# ----- group init -----

def _split(entry: str) -> tuple[str, int]:
    host, port = entry.rsplit(":", 1)
    return host, int(port)


def _accept_left(listener: socket.socket, left: int, n: int, deadline: float, box: dict) -> None:
    """Accept connections until the left neighbour's hello arrives (strays are dropped)."""
    try:
        while time.monotonic() < deadline:
            listener.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                conn, _ = listener.accept()
            except socket.timeout:
                break
            with conn:
                conn.settimeout(max(0.05, deadline - time.monotonic()))
                try:
                    magic, sender, size = _HELLO.unpack(conn.recv(_HELLO.size, socket.MSG_WAITALL))
                except (OSError, struct.error):
                    continue
                if (magic, sender, size) == (_MAGIC, left, n):
                    listener.close()  # before the ack, so the neighbour's next dial reaches MLX
                    conn.sendall(b"OK")
                    conn.recv(1)  # the dialer closes first, keeping TIME_WAIT off our port
                    box["ok"] = True
                    return
    except OSError as e:
        box["error"] = e


def _dial_right(addr: tuple[str, int], rank: int, n: int, deadline: float) -> bool:
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(addr, timeout=max(0.05, deadline - time.monotonic())) as s:
                s.sendall(_HELLO.pack(_MAGIC, rank, n))
                if s.recv(2, socket.MSG_WAITALL) == b"OK":
                    return True
        except OSError:
            pass
        time.sleep(0.1)  # peer not listening yet: poll again until the deadline
    return False


def meet_neighbours(entries: list[str], rank: int, deadline_s: float) -> None:
    """Rendezvous with ranks r-1 and r+1 on our own ports; GroupConnectTimeout if one is absent."""
    n = len(entries)
    deadline = time.monotonic() + deadline_s
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(_split(entries[rank]))
    listener.listen(8)
    box: dict[str, Any] = {}
    t = threading.Thread(target=_accept_left, args=(listener, (rank - 1) % n, n, deadline, box), daemon=True)
    t.start()
    right = (rank + 1) % n
    dialed = _dial_right(_split(entries[right]), rank, n, deadline)
    t.join(max(0.0, deadline - time.monotonic()) + 1.0)
    listener.close()
    within = f"within {deadline_s:.0f} s"
    if not dialed:
        raise GroupConnectTimeout(f"rank {rank}: ring peer rank {right} at {entries[right]} did not answer {within}")
    if not box.get("ok"):
        left = (rank - 1) % n
        raise GroupConnectTimeout(f"rank {rank}: ring peer rank {left} never connected to {entries[rank]} {within}")


def init_group(deadline_s: float = 120.0) -> Any:
    """The ring group from MLX_HOSTFILE/MLX_RANK, or None for a single rank. Never blocks forever:
    GroupConnectTimeout when a neighbour is missing; if MLX itself then hangs, the process exits 1."""
    hostfile = os.environ.get("MLX_HOSTFILE")
    if not hostfile:
        return None
    import mlx.core as mx  # deferred: the pure helpers above need no MLX

    entries = [hosts[0] for hosts in json.loads(Path(hostfile).read_text())]
    rank = int(os.environ["MLX_RANK"])
    if len(entries) == 1:
        return None
    started = time.monotonic()
    meet_neighbours(entries, rank, deadline_s)
    # Ranks beyond our neighbours may still be starting: allow the rest of the deadline.
    backstop = max(0.0, deadline_s - (time.monotonic() - started)) + BACKSTOP_GRACE_S
    sys.stderr.write(f"skulk: rank {rank} joining the MLX ring (hard deadline {backstop:.0f} s)\n")
    faulthandler.dump_traceback_later(backstop, exit=True)
    try:
        group = mx.distributed.init(backend="ring", strict=True)
    except RuntimeError as e:
        raise GroupConnectTimeout(f"rank {rank}: MLX ring init failed: {e}") from e
    finally:
        faulthandler.cancel_dump_traceback_later()
    if group.size() != len(entries):
        raise GroupConnectTimeout(f"ring has {group.size()} ranks, hostfile lists {len(entries)}")
    return group
