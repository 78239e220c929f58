"""Runs every scenario in testdata/. Regenerate the outputs with SKULK_REGEN_TRANSCRIPTS=1."""

import difflib
import os
from pathlib import Path

import pytest

from skulk.election.transcript import REGEN_ENV, TranscriptError, run_transcript

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


def test_generated_lines_are_rewritten_and_comments_kept():
    text = "nodes a b\n> stale output\nconnect all  # meet\ntick 40\nexpect nonsense  # why\n"
    assert run_transcript(text) == (
        "nodes a b\n"
        "> +0 a -> a:0 clock 0 same\n"
        "> +0 b -> b:0 clock 0 same\n"
        "connect all  # meet\n"
        "tick 40\n"
        "> +4 a -> b:0 clock 1 new\n"
        "> +4 b -> b:0 clock 1 same\n"
        "expect a b on b:0  # why\n"
    )


@pytest.mark.parametrize(
    "text, why",
    [
        ("nodes a b\nrequire agree\n", "disagree"),
        ("nodes a b\nconnect all\ntick 40\nrequire master a\n", "follows b"),
        ("nodes a\nfly a\n", "unknown command"),
        ("nodes a\nnode b sideways\n", "unknown flags"),
    ],
)
def test_broken_requirements_and_commands_name_their_line(text: str, why: str):
    with pytest.raises(TranscriptError, match=why) as caught:
        run_transcript(text)
    assert f"line {text.count(chr(10))}" in str(caught.value)
