"""Tiny trained runs shared by the tools' tests (trained once per session: seconds on 2 cores)."""

import pytest

from depthrl.agents.crl import CRLConfig
from depthrl.envs.registry import EnvConfig
from depthrl.training.command import run as main
from depthrl.training.loop import TrainConfig
from depthrl.training.registry import AGENTS

Args = AGENTS["crl"].args  # the flags of `depthrl train crl`

# A 3x4 room: start top-left, goal bottom-right (the same room as tests/training).
TINY_ROOM = "######/#R...#/#....#/#...G#/######"


def tiny_args(run_dir, seed: int = 0, **overrides) -> Args:
    """4 epochs of 16 envs × 25 steps; evaluation and checkpoint after epochs 2 and 4."""
    fields = dict(
        env=EnvConfig(env="point-maze", layout=TINY_ROOM, episode_length=50),
        agent=CRLConfig(depth=4, width=16, repr_dim=8, batch_size=32),
        train=TrainConfig(num_envs=16, unroll_length=25, sgd_steps_per_collect=4, total_env_steps=1600,
                          eval_every=800, num_eval_envs=8, buffer_size=4000, seed=seed),
        run_dir=str(run_dir), progress=False, plots=False, tensorboard=False, compile_cache=False)
    fields.update(overrides)
    return Args(**fields)


@pytest.fixture
def make_tiny_args():
    return tiny_args


@pytest.fixture(scope="session")
def trained_runs(tmp_path_factory):
    """Two finished tiny runs of the same shapes (seeds 0 and 1): [run_dir_seed0, run_dir_seed1]."""
    base = tmp_path_factory.mktemp("tool_runs")
    dirs = [base / "tiny_s0", base / "tiny_s1"]
    for seed, run_dir in enumerate(dirs):
        assert main(tiny_args(run_dir, seed=seed)) == 0
    return dirs
