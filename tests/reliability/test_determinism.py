"""Same seed, same machine → same metrics, for an agent other than CRL (CRL: tests/training/test_crl_train.py);
and its resume from a checkpoint equals the uninterrupted run (the shell is shared, the agent state is not)."""

import dataclasses
import shutil

from depthrl.agents.sac import SACConfig
from depthrl.training import runner, train_sac
from depthrl.training.loop import TrainConfig
from tiny_runs import TINY_TRAIN, differences, tiny_env


def _sac_args(run_dir):
    return train_sac.Args(env=tiny_env(),
                          agent=SACConfig(depth=4, width=16, batch_size=32),
                          train=TrainConfig(**TINY_TRAIN), run_dir=str(run_dir),
                          progress=False, plots=False, tensorboard=False, compile_cache=False)


def test_sac_same_seed_same_metrics_and_resume_matches(tmp_path):
    first, again = _sac_args(tmp_path / "a"), _sac_args(tmp_path / "b")
    for args in (first, again):
        assert train_sac.main(args) == 0
    rows = runner.read_metrics(tmp_path / "a")
    assert [r["epoch"] for r in rows] == [2, 4] and rows[-1]["critic/loss"] != rows[0]["critic/loss"]
    assert differences(rows, runner.read_metrics(tmp_path / "b")) == []

    # Killed after the epoch-2 checkpoint (the epoch-4 one never written): resume gives the same metrics.
    shutil.rmtree(tmp_path / "b" / "checkpoints" / "epoch_00000004")
    assert train_sac.main(dataclasses.replace(first, resume=str(tmp_path / "b"))) == 0
    assert differences(rows, runner.read_metrics(tmp_path / "b")) == []
