"""Nothing depthrl loads executes code, and paths in a run's config.json cannot send writes outside it."""

import ast
import dataclasses
import json
import os
import shutil
from pathlib import Path

import depthrl
from depthrl.training import runner
from depthrl.training.command import run as main
from tiny_runs import NUM_EPOCHS, differences

SRC = Path(depthrl.__file__).parent
CODE_LOADING_MODULES = {"pickle", "cPickle", "_pickle", "dill", "cloudpickle", "joblib", "marshal", "shelve",
                        "jsonpickle", "yaml"}
CODE_RUNNING_CALLS = {"eval", "exec", "compile", "__import__"}


def _violations(path: Path, root: Path = SRC) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name.split(".")[0] for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [(node.module or "").split(".")[0]]
        else:
            names = []
        found += [f"imports {n}" for n in names if n in CODE_LOADING_MODULES]
        if isinstance(node, ast.Call):
            if isinstance(node.func, ast.Name) and node.func.id in CODE_RUNNING_CALLS:
                found.append(f"calls {node.func.id}()")
            if any(k.arg == "allow_pickle" and not (isinstance(k.value, ast.Constant) and k.value.value is False)
                   for k in node.keywords):
                found.append("passes allow_pickle")
    return [f"{path.relative_to(root)}: {v}" for v in found]


def test_no_source_file_can_execute_loaded_data():
    files = sorted(SRC.rglob("*.py"))
    assert len(files) > 20  # the scan sees the package
    assert [v for f in files for v in _violations(f)] == []


def test_the_scan_catches_what_it_looks_for(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text("import pickle\nfrom dill import loads\nx = eval('1')\nimport numpy as np\n"
                     "np.load('a', allow_pickle=True)\nnp.load('b', allow_pickle=False)\njax.eval_shape(f)\n")
    assert _violations(probe, tmp_path) == ["probe.py: imports pickle", "probe.py: imports dill",
                                            "probe.py: calls eval()", "probe.py: passes allow_pickle"]


def test_crafted_config_paths_cannot_escape_the_run_directory(reference, tmp_path, monkeypatch):
    """config.json's run_dir/resume/preset fields point elsewhere; resuming (from inside the run directory,
    so relative paths would resolve next to it) writes only inside the run directory."""
    args, reference_dir, reference_rows = reference
    sandbox = tmp_path / "sandbox"
    run_dir = sandbox / "a" / "b" / "run"
    shutil.copytree(reference_dir, run_dir)
    shutil.rmtree(run_dir / "checkpoints" / f"epoch_{NUM_EPOCHS:08d}")  # so resuming trains and writes
    config = json.loads((run_dir / "config.json").read_text())
    config.update(run_dir="../../escaped", resume=str(tmp_path / "elsewhere"), tensorboard=True)
    (run_dir / "config.json").write_text(json.dumps(config))

    def snapshot():
        return {p: p.stat().st_mtime_ns for p in sandbox.rglob("*") if run_dir not in (p, *p.parents)}

    before = snapshot()
    monkeypatch.chdir(run_dir)
    assert main(dataclasses.replace(args, resume=".", tensorboard=True)) == 0
    assert snapshot() == before  # nothing created or modified outside the run directory
    assert not (tmp_path / "elsewhere").exists()
    assert any((run_dir / "tb").iterdir())  # it did write: inside
    assert differences(reference_rows, runner.read_metrics(run_dir)) == []
    assert os.getcwd() == str(run_dir)
