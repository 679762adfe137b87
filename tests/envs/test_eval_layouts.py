"""The paper code's evaluation mazes (far goals only) and --eval-env: train on one goal env, evaluate on another.

The cells below are copied by hand from the `*_EVAL` layouts of the paper's code (scaling-crl,
envs/ant_maze.py and envs/humanoid_maze.py) as (row, column) of the layout grid, border included.
"""

from __future__ import annotations

import jax
import numpy as np
import pytest

from depthrl.envs.maze import parse_layout
from depthrl.envs.physics import catalog
from depthrl.envs.registry import ENVS, EnvConfig, make_envs
from depthrl.errors import ConfigError

REFERENCE_EVAL = {  # layout: (reset cell, goal cells) of the reference
    "u-eval": ((1, 1), [(3, 1), (3, 2), (3, 3)]),
    "u4-eval": ((2, 1), [(4, 1), (5, 1), (5, 2), (5, 3)]),
    "u5-eval": ((2, 1), [(4, 1), (4, 6), (5, 1), (5, 2), (5, 3), (5, 4), (5, 5), (5, 6)]),
    "big-eval": ((1, 1), [(1, 5), (1, 6), (2, 6), (5, 3), (5, 6), (6, 2), (6, 3), (6, 5), (6, 6)]),
    "big-eval-humanoid": ((1, 1), [(1, 5), (1, 6), (2, 5), (2, 6), (5, 3), (5, 6), (6, 2), (6, 3), (6, 5), (6, 6)]),
}
TRAINING_LAYOUT = {"u-eval": "u", "u4-eval": "u4", "u5-eval": "u5", "big-eval": "big", "big-eval-humanoid": "big"}


@pytest.mark.parametrize("name", REFERENCE_EVAL)
def test_eval_layouts_have_the_reference_cells_and_the_training_walls(name):
    layout, train = parse_layout(name), parse_layout(TRAINING_LAYOUT[name])
    reset, goals = REFERENCE_EVAL[name]
    assert [tuple(c) for c in layout.free_cells[layout.reset_indices]] == [reset]
    assert sorted(tuple(c) for c in layout.free_cells[layout.goal_indices]) == goals
    np.testing.assert_array_equal(layout.walls, train.walls)  # same maze, fewer goals
    assert set(map(tuple, train.free_cells[train.goal_indices])) > set(goals)


def test_eval_tasks_are_registered_on_their_layouts():
    expected = {"ant-u-maze-eval": "u-eval", "ant-u4-maze-eval": "u4-eval", "ant-u5-maze-eval": "u5-eval",
                "ant-big-maze-eval": "big-eval", "humanoid-u-maze-eval": "u-eval",
                "humanoid-big-maze-eval": "big-eval-humanoid"}
    assert {name: catalog.ENVS[name].maze for name in expected} == expected
    assert {f"point-maze-{n}-eval": ENVS[f"point-maze-{n}-eval"][0] for n in ("u", "u4", "u5", "big")} == {
        f"point-maze-{n}-eval": f"{n}-eval" for n in ("u", "u4", "u5", "big")}


def test_eval_env_evaluates_on_its_own_goals():
    train, evaluation = make_envs(EnvConfig(env="point-maze-u", eval_env="point-maze-u-eval"))
    assert train.spec.name == "point-maze-u" and evaluation.spec.name == "point-maze-u-eval"
    state = jax.vmap(evaluation.reset)(jax.random.split(jax.random.PRNGKey(0), 256))
    cells = {(int(y), int(x)) for x, y in np.floor(np.asarray(state.obs[:, 4:6]))}  # goal (x, y) -> (row, col)
    assert cells == set(REFERENCE_EVAL["u-eval"][1])
    state = jax.vmap(train.reset)(jax.random.split(jax.random.PRNGKey(0), 256))
    assert {(int(y), int(x)) for x, y in np.floor(np.asarray(state.obs[:, 4:6]))} > cells


@pytest.mark.parametrize("cfg, fragment", [
    (EnvConfig(env="point-maze-u", eval_env="cartpole"), "must be a goal env"),
    (EnvConfig(env="point-maze-u", eval_env="ant-big-maze-eval"), "obs/action dims (31, 8)"),
    (EnvConfig(env="ant-big-maze", eval_env="humanoid-big-maze-eval"), "obs/action dims (271, 17)"),
    (EnvConfig(env="point-maze-u", stitching=True, eval_env="point-maze-u-eval"), "not with stitching"),
    (EnvConfig(env="cartpole", eval_env="point-maze-u"), "only for goal envs"),
])
def test_invalid_eval_env_names_the_flag(cfg, fragment):
    with pytest.raises(ConfigError) as err:
        cfg.validate()
    assert err.value.flag == "--eval-env" and fragment in str(err.value), str(err.value)


@pytest.mark.parametrize("cfg, flag", [
    (EnvConfig(env="point-maze-u", goal_resample="sometimes"), "--goal-resample"),
    (EnvConfig(env="cartpole", goal_resample="never"), "--goal-resample"),
    (EnvConfig(env="cartpole", early_termination=True), "--early-termination"),
])
def test_invalid_episode_flags_name_the_flag(cfg, flag):
    with pytest.raises(ConfigError) as err:
        cfg.validate()
    assert err.value.flag == flag


def test_table1_presets_use_the_reference_protocol():
    """The paper code keeps each training env's first start and goal, terminates fallen robots (the physics
    default) and evaluates ant_big_maze on ant_big_maze_eval (its job.slurm); other tasks on themselves."""
    from depthrl.training import presets

    by_name = presets.by_name()
    for env in presets.TABLE1_ENVS.values():
        if env not in catalog.ENVS:
            continue
        for depth in (4, 64):
            cfg = by_name[f"{env}-d{depth}"].env
            assert cfg.goal_resample == "never" and cfg.early_termination is None, env
            assert cfg.eval_env == ("ant-big-maze-eval" if env == "ant-big-maze" else None), env
    assert by_name["quickstart"].env.goal_resample == "episode" and by_name["quickstart"].env.eval_env is None


def test_compare_prints_the_paper_number_beside_steps_at_goal(tmp_path, capsys):
    """A run directory of ant-big-maze at depth 64 (written by hand: no training) shows 441, Table 1's number."""
    import json

    from depthrl.commands import compare as compare_cli

    run = tmp_path / "big64"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"kind": "crl", "env": {"env": "ant-big-maze"},
                                                 "agent": {"depth": 64}, "train": {}}))
    (run / "metrics.jsonl").write_text(json.dumps({"epoch": 1, "env_steps": 100, "eval/time_at_goal": 0.3,
                                                   "eval/success": 1.0, "eval/steps_at_goal": 300.0}) + "\n")
    assert compare_cli.main(compare_cli.Args(run_dirs=(str(run),), out=str(tmp_path / "c.png"), json=True)) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["paper steps_at_goal"] == 441.0 and record["final eval/steps_at_goal"] == 300.0
    assert compare_cli.main(compare_cli.Args(run_dirs=(str(run),), out=str(tmp_path / "c.png"))) == 0
    table = capsys.readouterr().out
    assert "441.000" in table and "300.000" in table  # the two numbers side by side


def test_depthrl_eval_keeps_the_runs_eval_env_unless_given_another():
    from depthrl.commands import eval as eval_cli

    run_env = EnvConfig(env="point-maze-u", eval_env="point-maze-u-eval")
    kept = eval_cli.eval_env_config(run_env, eval_cli.Args(run_dir="run"))
    assert (kept.env, kept.eval_env) == ("point-maze-u", "point-maze-u-eval")
    other = eval_cli.eval_env_config(run_env, eval_cli.Args(run_dir="run", env="point-maze-u4"))
    assert (other.env, other.eval_env) == ("point-maze-u4", None)
    stitched = eval_cli.eval_env_config(run_env, eval_cli.Args(run_dir="run", stitching=True))
    assert stitched.stitching and stitched.eval_env is None


def test_episode_flags_reach_the_envs():
    from depthrl.envs.wrappers import unwrapped

    train, evaluation = make_envs(EnvConfig(env="point-maze-u", early_termination=True, goal_resample="never"))
    assert unwrapped(train).terminate_at_goal and unwrapped(evaluation).terminate_at_goal
    assert not train.resample and evaluation.resample  # evaluation always draws new starts and goals
    train, _ = make_envs(EnvConfig(env="point-maze-u"))
    assert not unwrapped(train).terminate_at_goal and train.resample  # the point-maze defaults: unchanged
