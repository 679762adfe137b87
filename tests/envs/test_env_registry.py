"""Tests for depthrl.envs.registry and the `depthrl envs` command: config errors, make_envs, stitching."""

from __future__ import annotations

import json

import jax
import numpy as np
import pytest

from depthrl.commands import envs as list_cli
from depthrl.envs.maze import PointMaze, cell_distances
from depthrl.envs.registry import ENVS, EnvConfig, batched_envs, list_envs, make_envs
from depthrl.envs.wrappers import unwrapped
from depthrl.errors import ConfigError


@pytest.mark.parametrize(
    "cfg, flag, fragments",
    [
        (EnvConfig(env="ant-maze"), "--env", ["point-maze-u", "point-maze-hardest", "point-maze,"]),
        (EnvConfig(env="point-maze"), "--layout", ["needs --layout"]),
        (EnvConfig(env="crawler-maze"), "--layout", ["--env crawler-maze needs --layout"]),
        (EnvConfig(env="crawler-maze-u4", layout="u"), "--layout", ["crawler-maze-u4 has its own maze"]),
        (EnvConfig(layout="u4"), "--layout", ["only with --env point-maze"]),
        (EnvConfig(env="point-maze", layout="#R#G#"), "--layout", ["unreachable"]),
        (EnvConfig(episode_length=0), "--episode-length", ["> 0"]),
        (EnvConfig(success_radius=-1.0), "--success-radius", ["> 0"]),
        (EnvConfig(stitch_train_max=2), "--stitch-train-max", ["only used with --stitching"]),
        (EnvConfig(stitching=True, random_start=True), "--random-start", ["not with --stitching"]),
        (EnvConfig(stitching=True, stitch_train_max=0), "--stitch-train-max", ["> 0"]),
        (EnvConfig(stitching=True, stitch_eval_min=3), "--stitch-eval-min", ["exceed --stitch-train-max=3"]),
        (
            EnvConfig(stitching=True, stitch_eval_min=5, stitch_eval_max=4),
            "--stitch-eval-max",
            [">= --stitch"],
        ),
        (
            EnvConfig(stitching=True, stitch_eval_min=7, stitch_eval_max=9),
            "--stitch-eval-min",
            ["no two cells", "7..9 cells apart", "longest shortest path is 6"],
        ),
    ],
)
def test_invalid_configs_name_the_flag(cfg, flag, fragments):
    with pytest.raises(ConfigError) as err:
        cfg.validate()
    assert err.value.flag == flag
    for fragment in fragments:
        assert fragment in str(err.value), (fragment, str(err.value))


@pytest.mark.parametrize("flag, field, value", [("--stitch-pairs", "stitch_pairs", "forward"),
                                                ("--stitch-eval-max", "stitch_eval_max", 9),
                                                ("--random-start", "random_start", True)])
def test_a_registered_env_refuses_the_maze_flags(monkeypatch, flag, field, value):
    """An env added by register_env decides starts and goals itself: every stitching flag is refused by name."""
    from depthrl.envs import registry

    monkeypatch.setattr(registry, "GOAL_ENVS", {})
    registry.register_env("user-square", lambda: PointMaze("open"), episode_length=20)
    EnvConfig(env="user-square").validate()
    with pytest.raises(ConfigError) as err:
        EnvConfig(env="user-square", **{field: value}).validate()
    assert err.value.flag == flag and "register_env" in str(err.value)


@pytest.mark.parametrize("name", list(ENVS))
def test_every_registered_env_builds_and_steps(name):
    cfg = EnvConfig(env=name, layout="#####/#R..#/#.#G#/#####" if ENVS[name][0] is None else None)
    train, evaluation = make_envs(cfg.validate())
    assert train is evaluation or train == evaluation
    state = jax.vmap(train.reset)(jax.random.split(jax.random.PRNGKey(0), 4))
    state = jax.vmap(train.step)(state, np.zeros((4, train.spec.action_dim), np.float32))
    assert state.obs.shape == (4, train.spec.obs_dim) and train.spec.name == name


def test_flags_reach_the_env():
    train, _ = make_envs(
        EnvConfig(env="point-maze-u5", episode_length=33, success_radius=0.25, random_start=True)
    )
    maze = unwrapped(train)
    assert train.spec.episode_length == 33 and maze.success_radius == 0.25 and maze.random_start
    train, _ = make_envs(EnvConfig())
    assert train.spec.episode_length == PointMaze("u").default_episode_length
    batched, _ = batched_envs(EnvConfig())
    assert batched.reset(jax.random.split(jax.random.PRNGKey(0), 3)).obs.shape == (3, 6)


@pytest.mark.parametrize("name", ["point-maze-u5", "point-maze-hardest", "point-maze-big"])
def test_stitching_pairs_respect_the_distances(name):
    train, evaluation = make_envs(EnvConfig(env=name, stitching=True))
    maze_train, maze_eval = unwrapped(train), unwrapped(evaluation)
    layout = maze_train.layout
    dist = cell_distances(layout)
    train_pairs, eval_pairs = set(maze_train.pairs), set(maze_eval.pairs)
    assert train_pairs and eval_pairs and not train_pairs & eval_pairs  # evaluation never leaks
    assert all(1 <= dist[s, g] <= 3 for s, g in train_pairs)
    assert all(4 <= dist[s, g] <= 6 for s, g in eval_pairs)
    assert train.spec.episode_length == evaluation.spec.episode_length
    # Sampled episodes: start and goal cells are a listed pair.
    index = {tuple(rc): i for i, rc in enumerate(layout.free_cells.tolist())}
    for env, pairs in ((train, train_pairs), (evaluation, eval_pairs)):
        obs = np.asarray(jax.vmap(env.reset)(jax.random.split(jax.random.PRNGKey(1), 500)).obs)
        starts = [index[(int(y), int(x))] for x, y in np.floor(obs[:, :2])]
        goals = [index[(int(y), int(x))] for x, y in np.floor(obs[:, 4:])]
        sampled = set(zip(starts, goals, strict=True))
        assert sampled <= pairs
        assert len(sampled) > 0.5 * min(len(pairs), 500)  # spread over many pairs


def test_list_envs_and_cli(capsys):
    rows = list_envs()
    assert [r[0] for r in rows][: len(ENVS)] == list(ENVS)  # the mazes first, then the other families
    dims = {name: (14, 4) if name.startswith("crawler-maze") else (6, 2) for name in ENVS}
    assert all((r[1], r[2]) == dims[r[0]] and r[3] for r in rows if r[0] in ENVS)
    assert list_cli.main(list_cli.Args()) == 0
    assert "point-maze-hardest" in capsys.readouterr().out
    assert list_cli.main(list_cli.Args(json=True)) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["name"] for line in lines] == [r[0] for r in rows]


def test_depthrl_envs_dispatch(capsys):
    from depthrl.cli import main

    assert main(["envs", "--json"]) == 0
    assert "point-maze-u4" in capsys.readouterr().out
