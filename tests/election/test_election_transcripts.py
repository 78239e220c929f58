"""Runs every scenario in testdata/. Regenerate the outputs with SKULK_REGEN_TRANSCRIPTS=1."""

import difflib
import os
from pathlib import Path

import pytest

from skulk.election.transcript import REGEN_ENV, run_transcript

TESTDATA = Path(__file__).parent / "testdata"
SCENARIOS = sorted(TESTDATA.glob("*.txt"))


def test_there_are_scenarios():
    assert len(SCENARIOS) >= 10


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_transcript(path: Path):
    expected = path.read_text()
    actual = run_transcript(expected)  # `require` failures raise here, regen or not
    if os.environ.get(REGEN_ENV) == "1":
        if actual != expected:
            path.write_text(actual)
        return
    lines = expected.splitlines(keepends=True), actual.splitlines(keepends=True)
    diff = "".join(difflib.unified_diff(*lines, "expected", "actual"))
    assert actual == expected, f"{path.name} changed (regenerate with {REGEN_ENV}=1):\n{diff}"
