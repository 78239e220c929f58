"""Architecture rules: import-linter contracts and module/function size limits."""

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_import_linter_contracts_hold():
    exe = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(exe), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]


def test_modules_and_functions_stay_small():
    too_big = []
    for path in (ROOT / "skulk").rglob("*.py"):
        lines = path.read_text().splitlines()
        if len(lines) > 450:
            too_big.append(f"{path.relative_to(ROOT)}: {len(lines)} lines")
        for node in ast.walk(ast.parse("\n".join(lines))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > 80:
                    too_big.append(f"{path.relative_to(ROOT)}:{node.name}: {length} lines")
    assert not too_big, "\n".join(too_big)


def test_test_module_basenames_are_unique():
    """Test dirs are not packages (rootdir import mode), so two test files with one basename
    break collection of the whole suite."""
    tests = Path(__file__).parent
    seen: dict[str, Path] = {}
    clashes = []
    for path in sorted(tests.rglob("test_*.py")):
        if path.name in seen:
            clashes.append(f"{seen[path.name]} and {path}")
        seen.setdefault(path.name, path)
    assert not clashes, clashes
