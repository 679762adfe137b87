import dataclasses

import pytest

from depthrl.agents.crl import CRLConfig
from depthrl.envs.registry import EnvConfig
from depthrl.training.loop import TrainConfig
from depthrl.training.registry import AGENTS

Args = AGENTS["crl"].args  # the flags of `depthrl train crl`

# A 3x4 room: start top-left, goal bottom-right (about 3 cells apart).
TINY_ROOM = "######/#R...#/#....#/#...G#/######"


def tiny_args_for(run_dir, **train_overrides) -> Args:
    """A CRL config small enough to compile and run in seconds on 2 cores, writing to `run_dir`."""
    train = dict(num_envs=16, unroll_length=25, sgd_steps_per_collect=4, total_env_steps=1600,
                 eval_every=800, num_eval_envs=8, buffer_size=4000)
    train.update(train_overrides)
    return Args(
        env=EnvConfig(env="point-maze", layout=TINY_ROOM, episode_length=50),
        agent=CRLConfig(depth=4, width=16, repr_dim=8, batch_size=32),
        train=TrainConfig(**train),
        run_dir=str(run_dir),
        progress=False,
        plots=False,
        tensorboard=False, compile_cache=False,
    )


@pytest.fixture(scope="session")
def tiny_args_at():
    """`tiny_args_for` itself, for a fixture of a wider scope than a test's temporary folder."""
    return tiny_args_for


@pytest.fixture
def tiny_args(tmp_path):
    """`tiny_args_for` in the test's temporary folder."""

    def make(**train_overrides):
        return tiny_args_for(tmp_path / "run", **train_overrides)

    return make


def replace(args, **kw):
    return dataclasses.replace(args, **kw)
