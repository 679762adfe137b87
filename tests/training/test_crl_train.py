"""CRL end to end: learning, resume ≡ uninterrupted, run directory, plots (determinism and vmapped seeds:
test_make_train.py, without the CLI)."""

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from depthrl.agents.crl import CRLConfig
from depthrl.envs.registry import EnvConfig
from depthrl.errors import ConfigError
from depthrl.training import checkpoint as ckpt
from depthrl.training import runner
from depthrl.training.command import run as main
from depthrl.training.loop import TrainConfig
from depthrl.training.registry import AGENTS

Args = AGENTS["crl"].args  # the flags of `depthrl train crl`

TINY_ROOM = "######/#R...#/#....#/#...G#/######"  # same room as conftest.tiny_args


def _final(run_dir) -> dict:
    return runner.read_metrics(Path(run_dir))[-1]


def test_crl_learns_a_small_maze_in_about_a_minute(tmp_path):
    """The agent must actually learn: success >= 0.8 on a small room from a fixed start."""
    args = Args(
        env=EnvConfig(env="point-maze", layout=TINY_ROOM, episode_length=50),
        agent=CRLConfig(depth=4, width=64, batch_size=256),
        train=TrainConfig(num_envs=32, unroll_length=50, sgd_steps_per_collect=16, total_env_steps=160_000,
                          eval_every=40_000, num_eval_envs=128),
        run_dir=str(tmp_path / "learn"), progress=False, plots=False, tensorboard=False, compile_cache=False)
    assert main(args) == 0
    rows = runner.read_metrics(tmp_path / "learn")
    best_last_two = max(r["eval/success"] for r in rows[-2:])
    assert best_last_two >= 0.8, [r["eval/success"] for r in rows]


def test_run_directory_contents_and_resume_equals_uninterrupted(tiny_args, tmp_path):
    args = tiny_args()  # 4 epochs of 400 steps, eval + checkpoint every 2
    assert main(args) == 0
    run = Path(args.run_dir)
    config = json.loads((run / "config.json").read_text())
    assert config["agent"]["depth"] == 4 and config["env"]["layout"] == TINY_ROOM
    rows = runner.read_metrics(run)
    assert [r["epoch"] for r in rows] == [2, 4]
    assert {"eval/success", "eval/time_at_goal", "eval/final_distance", "critic/accuracy", "alpha/value",
            "actor/entropy", "critic/grad_norm", "diag/sa_encoder_effective_rank"} <= set(rows[-1])
    assert [p.name for p in ckpt.list_checkpoints(run / "checkpoints")] == ["epoch_00000002", "epoch_00000004"]

    # Simulate a kill after epoch 2: drop the last checkpoint and a torn metrics line, then resume.
    killed = tmp_path / "killed"
    shutil.copytree(run, killed)
    shutil.rmtree(killed / "checkpoints" / "epoch_00000004")
    lines = (killed / "metrics.jsonl").read_text().splitlines()
    (killed / "metrics.jsonl").write_text(lines[0] + "\n" + lines[1][:20])
    assert main(dataclasses.replace(args, run_dir="ignored", resume=str(killed))) == 0
    resumed = runner.read_metrics(killed)
    assert [r["epoch"] for r in resumed] == [2, 4]
    for key in ("eval/success", "eval/time_at_goal", "eval/final_distance", "critic/loss", "actor/loss"):
        assert resumed[-1][key] == rows[-1][key], key


def test_existing_run_dir_needs_overwrite(tiny_args):
    args = tiny_args(total_env_steps=400, eval_every=400)
    assert main(args) == 0
    with pytest.raises(ConfigError, match="--run-dir"):
        main(args)
    assert main(dataclasses.replace(args, overwrite=True)) == 0


def test_resume_errors(tiny_args, tmp_path):
    with pytest.raises(ConfigError, match="--resume"):
        main(dataclasses.replace(tiny_args(), resume=str(tmp_path)))  # not a run directory
    args = tiny_args(total_env_steps=400, eval_every=400)
    assert main(args) == 0
    conflicting = dataclasses.replace(args, resume=args.run_dir, agent=dataclasses.replace(args.agent, depth=8))
    with pytest.raises(ConfigError, match="--depth"):
        main(conflicting)


def test_plots_are_written(tiny_args):
    args = dataclasses.replace(tiny_args(total_env_steps=400, eval_every=400), plots=True)
    assert main(args) == 0
    plots = Path(args.run_dir) / "plots"
    for name in ("learning_curves.png", "trajectories.png", "q_heatmap.png"):
        assert (plots / name).stat().st_size > 5_000, name


@pytest.mark.slow
def test_early_termination_goal_resample_and_eval_env_run_end_to_end(tiny_args):
    """(slow: 86 s at load 10; the fast tests cover its parts: tests/buffers/test_trajectory.py (terminated
    episodes), tests/envs/test_maze_wrappers.py (termination, metrics, --goal-resample), test_eval_layouts.py
    (--eval-env envs), and every CRL run here (the loop's collect → buffer path).)

    Point-mass episodes that end at the goal (variable length in the buffer), training envs that keep their
    first goal, evaluation on the U-maze's far goals: the run logs each eval episode's length and steps at
    goal, and an episode that ends at the goal holds at most that one step there."""
    args = tiny_args(total_env_steps=800, eval_every=400)
    args = dataclasses.replace(args, env=EnvConfig(env="point-maze-u", episode_length=50, early_termination=True,
                                                   goal_resample="never", eval_env="point-maze-u-eval"))
    assert main(args) == 0
    config = json.loads((Path(args.run_dir) / "config.json").read_text())["env"]
    assert (config["eval_env"], config["goal_resample"], config["early_termination"]) == ("point-maze-u-eval",
                                                                                          "never", True)
    for row in runner.read_metrics(Path(args.run_dir)):
        assert 1 <= row["eval/episode_length"] <= 50 and np.isfinite(row["critic/loss"])
        assert row["eval/steps_at_goal"] <= row["eval/success"] + 1e-6  # at most the terminal step at goal
        assert row["eval/time_at_goal"] == pytest.approx(row["eval/steps_at_goal"] / 50, rel=1e-5)
