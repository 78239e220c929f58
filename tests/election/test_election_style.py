"""Size limits from docs/design.md, for the election package."""

import ast
from pathlib import Path

import skulk.election

PACKAGE = Path(skulk.election.__file__).parent


def test_modules_under_400_lines_and_functions_under_60():
    for path in sorted(PACKAGE.glob("*.py")):
        source = path.read_text()
        assert len(source.splitlines()) <= 400, f"{path.name} is too long"
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                assert length <= 60, f"{path.name}:{node.lineno} {node.name} has {length} lines"
