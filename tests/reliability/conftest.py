import shutil

import pytest
from reliability_helpers import tiny_args

from depthrl.training import runner
from depthrl.training.command import run as main


@pytest.fixture(scope="session")
def reference(tmp_path_factory):
    """One uninterrupted tiny run shared by every reliability test: (args, run_dir, metrics rows)."""
    run_dir = tmp_path_factory.mktemp("reference") / "run"
    args = tiny_args(run_dir)
    assert main(args) == 0
    return args, run_dir, runner.read_metrics(run_dir)


@pytest.fixture
def reference_copy(reference, tmp_path):
    """A private copy of the reference run directory, for a test to damage."""
    _, run_dir, _ = reference
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    return copy
