"""Shared fixtures: every config test runs in an empty temporary working directory."""

from pathlib import Path

import pytest


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty cwd, so the default ./skulk.yaml is whatever the test writes there."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def write_yaml(workdir: Path):
    """Writes ./skulk.yaml (or another name) in the test's cwd and returns its path."""

    def write(text: str, name: str = "skulk.yaml") -> Path:
        path = workdir / name
        path.write_text(text)
        return path

    return write
