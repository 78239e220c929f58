#!/usr/bin/env python3
"""Start N skulk nodes on 127.0.0.1 with their own ports and homes; Ctrl-C stops them all.

    .venv/bin/python scripts/local_cluster.py --nodes 3
"""

import argparse
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from skulk.testing.cluster import LocalCluster  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--root", type=Path, help="parent dir of the node homes (default: a temp dir)")
    parser.add_argument("--namespace", default="skulk-local")
    parser.add_argument("--keep", action="store_true", help="keep the node homes after stopping")
    parser.add_argument("extra", nargs="*", help="extra flags passed to every node (after --)")
    args = parser.parse_args()
    root = args.root or Path(tempfile.mkdtemp(prefix="skulk-local-"))
    cluster = LocalCluster(root, extra_env={"SKULK_DEBUG_ROUTES": "0"})
    try:
        for i in range(args.nodes):
            node = cluster.add_node(f"node{i}", namespace=args.namespace, extra_args=args.extra)
            cluster.wait_ready(node, timeout=60)
            print(f"node{i}: {node.url}  (home {node.home}, libp2p {node.peer_addr})", flush=True)
        print("all nodes up; Ctrl-C stops them", flush=True)
        signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not orphan nodes
        cluster.stop_all()
        if not args.keep and args.root is None:
            shutil.rmtree(root, ignore_errors=True)
        print("stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
