"""Ring setup helpers: hostfiles, per-rank environment, CPU plans, and the neighbour rendezvous."""

import json
import threading
import time

import pytest

from skulk.engine import distributed as d
from skulk.engine.errors import GroupConnectTimeout


def test_hostfile_is_one_list_per_rank(tmp_path):
    entries = d.ring_entries([("10.0.0.1", 5000), ("10.0.0.2", 5001)])
    path = d.write_hostfile(tmp_path / "h.json", entries)
    assert json.loads(path.read_text()) == [["10.0.0.1:5000"], ["10.0.0.2:5001"]]


def test_rank_view_listens_on_all_interfaces_and_hides_non_neighbours():
    entries = [f"10.0.0.{i}:{5000 + i}" for i in range(5)]
    view = d.rank_view(entries, 0)
    assert view == ["0.0.0.0:5000", "10.0.0.1:5001", d.PLACEHOLDER, d.PLACEHOLDER, "10.0.0.4:5004"]


def test_rank_env_sets_ring_vars_and_blas(tmp_path, monkeypatch):
    monkeypatch.setattr(d, "find_openblas", lambda: "/lib/libopenblas.so.0")
    env = d.rank_env(tmp_path / "h.json", 1, 2, threads=3, base={"LD_PRELOAD": "/x.so", "MLX_RANK": "9"})
    assert env["MLX_HOSTFILE"] == str(tmp_path / "h.json") and env["MLX_RANK"] == "1"
    assert env["LD_PRELOAD"] == "/lib/libopenblas.so.0 /x.so" and env["OPENBLAS_NUM_THREADS"] == "3"
    solo = d.rank_env(None, 0, 1, base={"MLX_HOSTFILE": "h", "MLX_RANK": "0"})
    assert "MLX_HOSTFILE" not in solo and "MLX_RANK" not in solo


def test_rank_env_without_openblas(monkeypatch):
    monkeypatch.setattr(d, "find_openblas", lambda: None)
    assert "LD_PRELOAD" not in d.rank_env(None, 0, 1, base={})


def test_affinity_plan_gives_each_rank_its_own_cores():
    assert d.plan_affinity(2, [0, 1, 2, 3]) == [{0, 1}, {2, 3}]
    assert d.plan_affinity(3, [0, 1, 2, 3, 4, 5, 6]) == [{0, 1}, {2, 3}, {4, 5}]
    assert d.plan_affinity(3, [0, 1]) == [{0}, {1}, {0}]  # more ranks than cores: shared


def test_neighbours_meet_when_all_are_present():
    entries = [f"127.0.0.1:{p}" for p in d.free_local_ports(3)]
    errors = []

    def rank(r):
        try:
            d.meet_neighbours(entries, r, deadline_s=10)
        except Exception as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=rank, args=(r,)) for r in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(15)
    assert not errors and not any(t.is_alive() for t in threads)


def test_missing_neighbour_is_a_clear_timeout():
    entries = [f"127.0.0.1:{p}" for p in d.free_local_ports(2)]
    started = time.monotonic()
    with pytest.raises(GroupConnectTimeout, match="rank 1"):
        d.meet_neighbours(entries, 0, deadline_s=0.5)
    assert time.monotonic() - started < 5


def test_single_rank_needs_no_group(monkeypatch):
    monkeypatch.delenv("MLX_HOSTFILE", raising=False)
    assert d.init_group(1) is None
