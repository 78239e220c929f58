"""The `skulk` command as a user runs it: clear one-line errors and exit codes."""

import subprocess
import sys

from skulk.testing.cluster import LocalCluster, free_port


def run_skulk(*args, cwd, timeout=60):
    return subprocess.run([sys.executable, "-m", "skulk", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)


def test_bad_config_is_one_line_naming_the_key_and_exit_2(tmp_path):
    (tmp_path / "skulk.yaml").write_text("api_port: 70000\n")
    r = run_skulk("--home", str(tmp_path / "h"), cwd=tmp_path)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "api_port" in lines[0]
    r = run_skulk("--api-port", "nope", cwd=tmp_path)
    assert r.returncode == 2


def test_ports_in_use_give_a_clear_error(tmp_path):
    cluster = LocalCluster(tmp_path)
    try:
        first = cluster.add_node("first")
        cluster.wait_ready(first)
        args = ["--home", str(tmp_path / "second"), "--no-mdns", "--node-name", "second"]
        r = run_skulk(*args, "--api-port", str(free_port()), "--libp2p-port", str(first.libp2p_port), cwd=tmp_path)
        assert r.returncode == 75 and "another --libp2p-port" in r.stderr.strip().splitlines()[-1]
        r = run_skulk(*args, "--api-port", str(first.api_port), "--libp2p-port", "0", cwd=tmp_path)
        assert r.returncode == 75 and "--api-port" in r.stderr.strip().splitlines()[-1]
    finally:
        cluster.stop_all()


def test_skulk_secret_prints_a_new_random_secret_each_run(tmp_path):
    runs = [run_skulk("secret", cwd=tmp_path) for _ in range(2)]
    assert [r.returncode for r in runs] == [0, 0]
    secrets = [r.stdout.strip() for r in runs]
    assert secrets[0] != secrets[1]
    assert all(len(s) >= 40 and s.replace("-", "").replace("_", "").isalnum() for s in secrets)
    assert run_skulk("secret", "extra", cwd=tmp_path).returncode == 2


def test_an_unreadable_secret_file_is_a_config_error(tmp_path):
    r = run_skulk("--home", str(tmp_path / "h"), "--cluster-secret-file", str(tmp_path / "missing"), cwd=tmp_path)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "--cluster-secret-file" in lines[0] and str(tmp_path / "missing") in lines[0]
