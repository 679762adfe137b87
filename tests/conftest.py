"""Test-session settings and the tiny trained runs many tests share (their configs: tests/tiny_runs.py).

One persistent compilation cache for the whole session, in a temporary folder so every run starts clean. Under
pytest-xdist the workers share it (it sits beside their own temporary folders): a program one worker compiled,
the other loads. JAX's capped cache locks the folder around each read and write, so two workers never see an
entry half written.
"""

import os
import shutil

# Before anything starts JAX's backend (XLA reads XLA_FLAGS once, when it starts): compile the suite's hundreds of
# small programs at LLVM optimisation level 0, about 30% less CPU for a test that mostly compiles (measured on the
# 2-core CPU: the SAC and TD3 end-to-end tests 42 -> 29 s of CPU). Child processes inherit it. Code whose speed
# matters more than its compile time (the SAC/TD3 probe-learning programs) compiles with `tiny_runs.OPTIMISED`.
# The MJX arm runs fast at these options (with XLA's newer fusion emitters at level 0 its solver ran ~800x slower).
from tiny_runs import FAST_XLA_FLAGS  # noqa: E402  (tiny_runs imports jax, which does not start the backend)

if os.environ.get("DEPTHRL_TEST_XLA_DEFAULTS") != "1":  # =1: run the tests with XLA's default code generation
    os.environ["XLA_FLAGS"] = " ".join(f for f in (os.environ.get("XLA_FLAGS", ""), FAST_XLA_FLAGS) if f)

import pytest  # noqa: E402

from depthrl.training import compile_cache  # noqa: E402
from tiny_runs import main, reference_args, tiny_crl_args  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def _session_compile_cache(tmp_path_factory):
    base = tmp_path_factory.getbasetemp()
    # An xdist worker's folder is <the session's folder>/popen-gwN: the parent is this session's, shared.
    folder = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "jax_cache"
    # Programs that compile in under 0.3 s are not stored: storing each of the suite's thousands of small programs
    # (every entry's write takes the folder's lock and sums the size of the whole folder) cost more than compiling
    # them again (tests/losses with the heads' tests, one process: 62 s storing all, 30 s with 0.3 s, 28 s without
    # a cache; the whole suite on 2 idle cores: 13 min 47 s storing all, 10 min 9 s with 0.3 s).
    compile_cache.enable(folder, min_compile_time_s=0.3)


@pytest.fixture
def tiny_args(tmp_path):
    """tiny_args(**train_overrides) -> the tiny CRL run's Args, in tmp_path/run."""
    return lambda **train: tiny_crl_args(tmp_path / "run", **train)


@pytest.fixture
def make_tiny_args():
    """tiny_crl_args(run_dir, seed=0, **train) -> the tiny CRL run's Args (tests/tiny_runs.py)."""
    return tiny_crl_args


@pytest.fixture(scope="session")
def reference(tmp_path_factory):
    """One uninterrupted tiny run of 12 epochs (checkpoints 8, 10 and 12 kept), shared by the tests of resume,
    checkpoints and bad input: (args, run_dir, metrics rows). Tests must not modify it: copy it
    (`reference_copy`)."""
    from depthrl.training import runner

    run_dir = tmp_path_factory.mktemp("reference") / "run"
    args = reference_args(run_dir)
    assert main(args) == 0
    return args, run_dir, runner.read_metrics(run_dir)


@pytest.fixture
def reference_copy(reference, tmp_path):
    """A private copy of the reference run directory, for a test to damage."""
    _, run_dir, _ = reference
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    return copy


@pytest.fixture(scope="session")
def trained_runs(tmp_path_factory):
    """Two finished tiny runs of 4 epochs (seeds 0 and 1; checkpoints 2 and 4): [run_dir_seed0, run_dir_seed1],
    for the tests of eval, render and compare."""
    base = tmp_path_factory.mktemp("tool_runs")
    dirs = [base / "tiny_s0", base / "tiny_s1"]
    for seed, run_dir in enumerate(dirs):
        assert main(tiny_crl_args(run_dir, seed=seed)) == 0
    return dirs
