"""docs/equations.md names real tests and real functions: a renamed test or function must update the doc."""

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "equations.md"


def _defined(paths) -> set[str]:
    names = set()
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.ClassDef):
                names.add(node.name)
            elif isinstance(node, ast.Assign):
                names.update(t.id for t in node.targets if isinstance(t, ast.Name))
    return names


def test_every_test_and_function_the_doc_names_exists():
    text = DOC.read_text()
    tests = set(re.findall(r"\b(test_[a-z0-9_]+)\b(?!\.py)", text))  # test functions, not test files
    defined_tests = _defined((ROOT / "tests").rglob("*.py"))
    assert len(tests) > 40
    assert sorted(tests - defined_tests) == []
    # the functions and classes of every "Code:" line are defined in depthrl
    code = _defined((ROOT / "src" / "depthrl").rglob("*.py"))
    named = [item.split(".")[0] for line in text.splitlines() if "Code:" in line
             for item in re.findall(r"`([^`]+)`", line)
             if not item.endswith(".py") and re.fullmatch(r"[A-Za-z_]\w*(\.\w+)*", item)]
    assert len(named) > 30
    assert sorted(set(named) - code) == []
