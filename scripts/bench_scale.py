#!/usr/bin/env python3
"""What a node pays as the cluster grows: real loopback nodes and simulated pure cores.

`--nodes 3,10,30` starts that many `--no-worker` node processes on 127.0.0.1 per size and
measures convergence, idle traffic and CPU, event fan-out and failover. `--simulate 100,1000`
drives the pure election core, apply, sequencer and placement with virtual nodes. One JSON
line per measurement; every wait is bounded and every process is stopped by PID.
"""

import argparse
import signal
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from skulk.testing.scale_sim import simulate  # noqa: E402


def emit(record: dict) -> None:
    print(json.dumps(record), flush=True)


def load() -> dict:
    one, five, _ = os.getloadavg()
    return {"load1": round(one, 2), "load5": round(five, 2), "cpus": os.cpu_count()}


def _interrupt(signum, frame):
    raise KeyboardInterrupt  # SIGTERM (e.g. from `timeout`) runs the finally that stops every node


def main() -> int:
    signal.signal(signal.SIGTERM, _interrupt)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", default="", help="comma-separated real cluster sizes, e.g. 3,10,30")
    parser.add_argument("--simulate", default="", help="comma-separated virtual sizes, e.g. 100,1000")
    parser.add_argument("--idle-window", type=float, default=10.0, help="seconds of idle measurement")
    parser.add_argument("--events", type=int, default=200, help="test events fanned out per size")
    parser.add_argument("--converge-timeout", type=float, default=120.0)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    emit({"measurement": "machine", **load(), "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
    for size in [int(s) for s in args.simulate.split(",") if s]:
        for record in simulate(size, seed=args.seed):
            emit(record)
    sizes = [int(s) for s in args.nodes.split(",") if s]
    if sizes:
        from skulk.testing.scale_real import measure_cluster  # imported late: psutil, httpx

        for size in sizes:
            with tempfile.TemporaryDirectory(prefix=f"skulk-scale-{size}-") as tmp:
                for record in measure_cluster(Path(tmp), size, idle_window=args.idle_window,
                                              events=args.events, converge_timeout=args.converge_timeout):
                    emit({**record, **load()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
