"""Smoke run of scripts/bench_engine.py on the tiny random model: every line is a JSON object
with a "bench" name, every bench reports numbers, none reports an error."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytest.importorskip("mlx_lm")


def test_bench_engine_tiny_quick_prints_json_lines():
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "bench_engine.py"), "--tiny", "--quick"],
                          capture_output=True, text=True, timeout=240, cwd=ROOT)
    records = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    assert [r["bench"] for r in records] == ["environment", "runner_vs_mlx_lm", "concurrency", "parallel"]
    assert not [r for r in records if "error" in r]
    by_name = {r["bench"]: r for r in records}
    runner = by_name["runner_vs_mlx_lm"]
    assert runner["runner"]["decode_tps"] > 0 and runner["mlx_lm"]["decode_tps"] > 0
    assert runner["ratio_decode_tps"] > 0 and runner["same_tokens"] is True
    assert set(by_name["concurrency"]["levels"]) == {"1", "4", "8"}
    parallel = by_name["parallel"]
    assert parallel["ratio_pipeline_2"] > 0 and parallel["ratio_tensor_2"] > 0
    assert parallel["pipeline_2"]["same_tokens_as_single"] is True
