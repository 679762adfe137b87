"""CRL end to end: learning, resume ≡ uninterrupted, run directory, plots (determinism and vmapped seeds:
test_make_train.py, without the CLI)."""

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from depthrl.envs.registry import EnvConfig
from depthrl.errors import ConfigError
from depthrl.training import checkpoint as ckpt
from depthrl.training import runner
from depthrl.training.command import run as main
from depthrl.training.registry import AGENTS
from tiny_runs import TINY_ROOM, compile_runs_optimised, tiny_crl_args

Args = AGENTS["crl"].args  # the flags of `depthrl train crl`


def _final(run_dir) -> dict:
    return runner.read_metrics(Path(run_dir))[-1]


# A corridor: the goal 3 cells east of the start (15 steps at full speed; an episode has 50).
CORRIDOR = "######/#R..G#/######"


def test_crl_learns_to_reach_the_end_of_a_corridor(tmp_path, monkeypatch):
    """The agent must actually learn: success >= 0.8 at one of its 4 evaluations (every 2000 env steps), 640 SGD
    steps in all; seeds 0-2 reach 1.0, 0.88 and 1.0 (CRL's success still swings between evaluations at this
    budget, so the best one is checked). Its epoch program runs 20 times at batch 256: it compiles with XLA's
    default options (35 -> 30 s of CPU for this test, 2-core CPU)."""
    args = tiny_crl_args(tmp_path / "learn", total_env_steps=8000, eval_every=2000, sgd_steps_per_collect=32)
    args = dataclasses.replace(args, env=dataclasses.replace(args.env, layout=CORRIDOR),
                               agent=dataclasses.replace(args.agent, width=64, batch_size=256, norm="layernorm"))
    compile_runs_optimised(monkeypatch)
    assert main(args) == 0
    successes = [r["eval/success"] for r in runner.read_metrics(tmp_path / "learn")]
    assert len(successes) == 4 and max(successes) >= 0.8, successes


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
