"""bench_scale --simulate on a small size: one JSON line per measurement, elections settle."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_bench_scale_simulate_prints_each_measurement():
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "bench_scale.py"), "--simulate", "20"],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    records = {r["measurement"]: r for r in map(json.loads, proc.stdout.splitlines())}
    assert set(records) == {"machine", "sim_election_converge", "sim_election_failover",
                            "sim_event_fanout", "sim_placement"}
    assert records["sim_election_converge"]["ticks"] is not None
    failover = records["sim_election_failover"]
    assert failover["ticks"] is not None and failover["new_master_differs"] is True
    assert records["sim_event_fanout"]["master_bytes_per_event"] > records["sim_event_fanout"]["bytes_per_event_encoded"]
    assert records["sim_placement"]["error"] is None and records["sim_placement"]["placed_on"] >= 1
