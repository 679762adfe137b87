"""Same seed, same machine → same result, for an agent other than CRL (CRL: tests/training/test_make_train.py),
through `make_train` without the CLI; and a CLI run resumed from a checkpoint equals the uninterrupted run (the
shell is shared, the agent state is not)."""

import dataclasses
import shutil

import jax
import numpy as np

from depthrl.agents.sac import SACConfig
from depthrl.training import command, runner
from depthrl.training.loop import TrainConfig, make_train
from depthrl.training.registry import AGENTS
from tiny_runs import TINY_TRAIN, differences, tiny_env


def _sac_args(run_dir):
    return AGENTS["sac"].args(env=tiny_env(),
                          agent=SACConfig(depth=4, width=16, batch_size=32, norm="none"),
                          train=TrainConfig(**TINY_TRAIN), run_dir=str(run_dir),
                          progress=False, plots=False, tensorboard=False, compile_cache=False)


def test_sac_same_key_same_result(tmp_path):
    train = jax.jit(make_train(command.build(_sac_args(tmp_path))))
    (state, metrics), (again, again_metrics) = train(jax.random.PRNGKey(0)), train(jax.random.PRNGKey(0))
    assert metrics["critic/loss"][-1] != metrics["critic/loss"][0]
    for a, b in zip(jax.tree.leaves((state, metrics)), jax.tree.leaves((again, again_metrics)), strict=True):
        np.testing.assert_array_equal(a, b)


def test_sac_resume_matches_uninterrupted(tmp_path):
    first = _sac_args(tmp_path / "a")
    assert command.run(first) == 0
    rows = runner.read_metrics(tmp_path / "a")
    assert [r["epoch"] for r in rows] == [2, 4] and rows[-1]["critic/loss"] != rows[0]["critic/loss"]

    # Killed after the epoch-2 checkpoint (the epoch-4 one never written): resume gives the same metrics.
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    shutil.rmtree(tmp_path / "b" / "checkpoints" / "epoch_00000004")
    assert command.run(dataclasses.replace(first, resume=str(tmp_path / "b"))) == 0
    assert differences(rows, runner.read_metrics(tmp_path / "b")) == []
