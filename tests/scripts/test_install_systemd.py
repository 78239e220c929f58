"""scripts/install-systemd.sh writes a user unit with restart backoff and a crash-loop limit."""

import configparser
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "install-systemd.sh"


def run(tmp_path, *args, env_extra=None):
    env = {**os.environ, "HOME": str(tmp_path / "home"), "SKULK_SYSTEMD_DIR": str(tmp_path / "units"),
           **(env_extra or {})}
    env.pop("XDG_CONFIG_HOME", None)
    return subprocess.run(["bash", str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=30)


def parse(text):
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # systemd keys are case-sensitive
    unit.read_string(text)
    return unit


def test_dry_run_prints_the_unit_and_writes_nothing(tmp_path):
    result = run(tmp_path, "--dry-run", "--", "--api-host", "0.0.0.0", "--node-name", "my box")
    assert result.returncode == 0, result.stderr
    assert not (tmp_path / "units").exists()
    unit = parse(result.stdout)
    service = unit["Service"]
    assert service["ExecStart"] == f'"{ROOT}/.venv/bin/skulk" "--api-host" "0.0.0.0" "--node-name" "my box"'
    assert service["Restart"] == "on-failure" and int(service["RestartSec"]) > 0
    assert int(service["RestartSteps"]) > 0 and int(service["RestartMaxDelaySec"]) > int(service["RestartSec"])
    assert service["RestartPreventExitStatus"] == "2"
    assert service["WorkingDirectory"] == str(tmp_path / "home" / ".skulk")
    assert int(unit["Unit"]["StartLimitBurst"]) > 1 and int(unit["Unit"]["StartLimitIntervalSec"]) > 0
    assert unit["Install"]["WantedBy"] == "default.target"


def test_writes_the_unit_where_told_without_starting_it(tmp_path):
    result = run(tmp_path, "--no-start", "--workdir", str(tmp_path / "work"))
    assert result.returncode == 0, result.stderr
    path = tmp_path / "units" / "skulk.service"
    unit = parse(path.read_text())
    assert unit["Service"]["WorkingDirectory"] == str(tmp_path / "work") and (tmp_path / "work").is_dir()
    if shutil.which("systemd-analyze") and (ROOT / ".venv" / "bin" / "skulk").exists():
        check = subprocess.run(["systemd-analyze", "verify", str(path)], capture_output=True, text=True, timeout=30)
        assert check.returncode == 0, check.stderr


def test_unknown_options_are_refused(tmp_path):
    assert run(tmp_path, "--frobnicate").returncode == 2


@pytest.mark.parametrize("flag", ["-h", "--help"])
def test_help(tmp_path, flag):
    result = run(tmp_path, flag)
    assert result.returncode == 0 and "--dry-run" in result.stdout
