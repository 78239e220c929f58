#!/usr/bin/env python3
"""Chaos battery on loopback: N nodes serving the default model, K clients, F faults; one JSON line.

Faults are drawn (seeded) from skulk.testing.chaos.FAULT_KINDS. A network partition is not
among them: it needs firewall rules on a host shared with other work (see docs/benchmarks.md).
Every process started is stopped by PID in a `finally`, Ctrl-C included.
"""

import argparse
import signal
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from skulk.testing.chaos import ENV, FAULT_KINDS, MODEL, dumps, run_battery, start_serving_cluster  # noqa: E402
from skulk.testing.cluster import LocalCluster  # noqa: E402


def _interrupt(signum, frame):
    raise KeyboardInterrupt  # SIGTERM (e.g. from `timeout`) runs the finally that stops every node


def main() -> int:
    signal.signal(signal.SIGTERM, _interrupt)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=4)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--faults", type=int, default=10)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--model", default=MODEL)
    parser.add_argument("--kinds", default=",".join(FAULT_KINDS), help="comma-separated fault kinds to draw from")
    parser.add_argument("--max-requests", type=int, default=5000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="skulk-chaos-") as tmp:
        models = Path(tmp) / "models"
        models.mkdir()
        cluster = LocalCluster(Path(tmp), extra_env={**ENV, "SKULK_MODELS_DIR": str(models)})
        try:
            nodes = start_serving_cluster(cluster, args.nodes, args.model)
            result = run_battery(cluster, nodes, clients=args.clients, faults=args.faults, seed=args.seed,
                                 model=args.model, kinds=tuple(args.kinds.split(",")),
                                 max_requests=args.max_requests)
        finally:
            cluster.stop_all()
    print(dumps({"nodes": args.nodes, "clients": args.clients, "seed": args.seed, **result}))
    return 0 if not (result["hung"] or result["lost"] or result["diverged"]) else 1


if __name__ == "__main__":
    sys.exit(main())
