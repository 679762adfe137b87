"""The package layers of DESIGN (README "What is inside"): each package imports only the packages below it,
so there are no import cycles between packages. Read from the source (every import statement, including
those inside functions), nothing is imported."""

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "depthrl"

# Bottom to top; a package may import any package of a lower rank (and itself).
LAYERS = ["errors", "envs", "networks", "losses", "buffers", "agents", "training", "sweep", "commands", "cli"]
RANK = {name: i for i, name in enumerate(LAYERS)}


def package_of(path: Path) -> str:
    parts = path.relative_to(SRC).parts
    return parts[0][: -len(".py")] if len(parts) == 1 else parts[0]


def imported_packages(path: Path) -> set[str]:
    """The depthrl packages that a module's import statements name."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module] if node.module != "depthrl" else [f"depthrl.{a.name}" for a in node.names]
        else:
            continue
        found |= {n.split(".")[1] for n in names if n.startswith("depthrl.")}
    return found


def test_only_the_entry_point_errors_and_the_version_sit_at_the_package_root():
    assert sorted(p.name for p in SRC.glob("*.py")) == ["__init__.py", "cli.py", "errors.py"]
    assert {p.name for p in SRC.iterdir() if p.is_dir() and p.name != "__pycache__"} == set(LAYERS) - {"errors", "cli"}


def test_every_package_imports_only_the_layers_below_it():
    wrong = []
    for path in sorted(SRC.rglob("*.py")):
        here = package_of(path)
        if here == "__init__":
            continue
        for there in imported_packages(path):
            if there != here and RANK[there] > RANK[here]:
                wrong.append(f"{path.relative_to(SRC)} ({here}) imports {there}")
    assert wrong == []


def test_the_check_sees_imports_inside_functions_and_from_depthrl_forms(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from depthrl import sweep\n    import depthrl.agents.crl\n"
                      "from depthrl.training.registry import AGENTS\nimport os\n")
    assert imported_packages(module) == {"sweep", "agents", "training"}
