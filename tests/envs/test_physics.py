"""Physics tasks (brax / MJX): registry and config errors, maze walls from the ASCII layouts, the env contract
under jit + vmap, scripted checks, and a CRL smoke run on an Ant maze.

brax compiles slowly on CPU, so the default run steps one env per family (FAST: the cheapest to compile of
each, compiled once and shared by the tests); the other envs run the same checks under `-m slow`. The
spring envs compile at XLA optimisation level 0 (a third less compile time; MJX compiles slower so). The
MJX arm is stepped unwrapped: `EpisodeWrapper`'s auto-reset (env-agnostic, tested on the Ant) would add a
full MJX forward pass to its step program and ~30 s of CPU compile. Tests that need brax are skipped with
the install command when the physics extra is missing (`make test` installs it).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from depthrl.envs import list_cli, physics
from depthrl.envs.maze import parse_layout
from depthrl.envs.physics import catalog
from depthrl.envs.physics.assets import wall_boxes
from depthrl.envs.registry import EnvConfig, list_envs, make_envs
from depthrl.envs.stitching import stitching_pairs
from depthrl.envs.wrappers import EPISODE_METRICS, unwrapped
from depthrl.errors import ConfigError

needs_brax = pytest.mark.skipif(not physics.available(), reason=f"physics extra missing: {physics.INSTALL_COMMAND}")

FAST = ("ant-u4-maze", "humanoid", "arm-push-easy")  # one per family, in the default run
# the *-eval tasks are their mazes with fewer goal cells (tests/envs/test_eval_layouts.py): not stepped again
SLOW = tuple(name for name in catalog.ENVS if name not in FAST and not name.endswith("-eval"))
# Each env's tests run on one xdist worker (make test: --dist loadgroup), so its programs (`_compiled`, tens of
# seconds to compile for the MJX arm) are built once, not on both workers.
ALL = [*(pytest.param(name, marks=pytest.mark.xdist_group(f"physics_{name}")) for name in FAST),
       *(pytest.param(name, marks=pytest.mark.slow) for name in SLOW)]
EPISODE = 4  # steps per episode in these tests
NUM_ENVS = 3
QUICK_COMPILE = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}


def _config(name: str, **overrides) -> EnvConfig:
    layout = "u" if catalog.ENVS[name].maze == catalog.CUSTOM else None
    return EnvConfig(env=name, layout=layout, episode_length=EPISODE, **overrides)


@dataclasses.dataclass(frozen=True)
class Compiled:
    """An env (EpisodeWrapper, or the raw env for MJX) with jitted, vmapped reset and step."""

    env: object
    reset: object
    step: object
    wrapped: bool

    @property
    def inner(self):
        return unwrapped(self.env)

    def physics(self, state):
        return state.physics["env"] if self.wrapped else state.physics

    def with_physics(self, state, physics):
        return state.replace(physics={**state.physics, "env": physics} if self.wrapped else physics)

    def reached(self, state) -> jax.Array:
        """[N, goal_dim] the coordinates a goal names, read from the simulator (torso or cube position)."""
        return self.physics(state).pipeline.x.pos[:, 0, : self.env.spec.goal_dim]


@functools.cache
def _compiled(name: str) -> Compiled:
    """Built and compiled once per test session and env (the tests share the programs)."""
    env, _ = make_envs(_config(name))
    mjx = catalog.ENVS[name].backend == "mjx"
    if mjx:
        env = unwrapped(env)
    options = {} if mjx else QUICK_COMPILE
    return Compiled(env, jax.jit(jax.vmap(env.reset), compiler_options=options),
                    jax.jit(jax.vmap(env.step), compiler_options=options), wrapped=not mjx)


@functools.cache
def _init_physics(name: str):
    """Jitted, vmapped `init_physics(q, qd, goal)` of an env, compiled once per session (tests share it)."""
    return jax.jit(jax.vmap(_compiled(name).inner.init_physics), compiler_options=QUICK_COMPILE)


# ---- no brax needed ----


def test_every_physics_env_is_listed_with_dims_and_description(capsys):
    rows = {name: (obs, act, text) for name, obs, act, text in list_envs()}
    for name, task in catalog.ENVS.items():
        assert rows[name][:2] == (task.obs_dim, task.action_dim) and len(rows[name][2]) > 20
    assert list_cli.main(list_cli.Args(json=True)) == 0
    printed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {"name": "ant-u4-maze", "obs_dim": 31, "action_dim": 8}.items() <= next(
        p for p in printed if p["name"] == "ant-u4-maze").items()


@pytest.mark.parametrize("cfg, flag, fragment", [
    (EnvConfig(env="ant", random_start=True), "--random-start", "only for mazes"),
    (EnvConfig(env="humanoid", stitching=True), "--stitching", "only for mazes"),
    (EnvConfig(env="ant-u-maze", layout="u4"), "--layout", "only with --env ant-custom-maze"),
    (EnvConfig(env="ant-custom-maze"), "--layout", "needs --layout"),
    (EnvConfig(env="ant-u-maze", stitch_train_max=2), "--stitch-train-max", "only used with --stitching"),
    (EnvConfig(env="ant-u4-maze-stitch", stitch_eval_min=3), "--stitch-eval-min", "exceed --stitch-train-max=3"),
    (EnvConfig(env="ant-u4-maze-stitch", random_start=True), "--random-start", "not with stitching"),
    (EnvConfig(env="ant-u-maze", stitching=True, stitch_eval_min=7, stitch_eval_max=9), "--stitch-eval-min",
     "no two cells"),
    (EnvConfig(env="arm-push-easy", physics_backend="spring"), "--physics-backend", "runs on mjx"),
    (EnvConfig(env="ant", physics_backend="positional"), "--physics-backend", "spring, generalized, mjx"),
    (EnvConfig(env="point-maze-u", physics_backend="mjx"), "--physics-backend", "only for physics envs"),
    (EnvConfig(env="ant", episode_length=0), "--episode-length", "> 0"),
    (EnvConfig(env="ant", success_radius=-1.0), "--success-radius", "> 0"),
])
def test_invalid_physics_configs_name_the_flag(cfg, flag, fragment):
    if not physics.available():
        pytest.skip(f"physics extra missing: {physics.INSTALL_COMMAND}")
    with pytest.raises(ConfigError) as err:
        cfg.validate()
    assert err.value.flag == flag and fragment in str(err.value), str(err.value)


def test_missing_physics_extra_names_env_and_install_command(monkeypatch):
    monkeypatch.setattr(physics, "available", lambda: False)
    with pytest.raises(ConfigError) as err:
        EnvConfig(env="ant-u4-maze").validate()
    assert err.value.flag == "--env" and physics.INSTALL_COMMAND in str(err.value)
    assert EnvConfig(env="point-maze-u").validate()  # the embedded envs do not need it
    assert all(physics.INSTALL_COMMAND in text for name, _, _, text in list_envs() if name in catalog.ENVS)


_WITHOUT_BRAX = """
import importlib.abc, json, sys
class Missing(importlib.abc.MetaPathFinder):  # as if the physics extra were not installed
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in ("brax", "mujoco"):
            raise ModuleNotFoundError(f"No module named {name!r}")
sys.meta_path.insert(0, Missing())
from depthrl.envs import physics
physics.available = lambda: False
import jax
from depthrl.envs.registry import EnvConfig, list_envs, make_envs
from depthrl.errors import ConfigError
rows = list_envs()
env, _ = make_envs(EnvConfig(env="point-maze-u"))
state = env.step(env.reset(jax.random.PRNGKey(0)), jax.numpy.zeros(2))
try:
    EnvConfig(env="ant").validate()
    error = None
except ConfigError as err:
    error = str(err)
print(json.dumps({"rows": len(rows), "obs": list(state.obs.shape), "error": error}))
"""


def test_base_install_works_without_brax():
    """In a fresh interpreter where brax and mujoco cannot be imported, the embedded envs list, build and
    step, and a physics --env fails at validation with the install command."""
    done = subprocess.run([sys.executable, "-c", _WITHOUT_BRAX], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["rows"] >= len(catalog.ENVS) + 7 and result["obs"] == [6]
    assert physics.INSTALL_COMMAND in result["error"] and "--env='ant'" in result["error"]


@pytest.mark.parametrize("name", ["u", "u4", "u5", "big", "hardest", "open"])
def test_wall_boxes_cover_the_layout_walls_next_to_free_cells(name):
    layout, scale = parse_layout(name), 4.0
    boxes = np.array(wall_boxes(layout, scale))
    walls = np.pad(layout.walls, 1, constant_values=True)

    def covered(x, y):
        return np.any((np.abs(boxes[:, 0] - x) < boxes[:, 2]) & (np.abs(boxes[:, 1] - y) < boxes[:, 3]))

    for r in range(walls.shape[0]):  # padded row/column 0 is the implicit border, at -1 cell
        for c in range(walls.shape[1]):
            x, y = (c - 1 + 0.5) * scale, (r - 1 + 0.5) * scale
            touches_free = not walls[max(r - 1, 0):r + 2, max(c - 1, 0):c + 2].all()
            if not walls[r, c]:
                assert not covered(x, y), (r, c)  # a free cell is never inside a wall
            elif touches_free:
                assert covered(x, y), (r, c)  # every wall the robot can reach is there
    assert len(boxes) < walls.sum()  # merged runs and unreachable cells: fewer boxes than wall cells


def test_stitching_env_trains_on_short_pairs_and_evaluates_on_long_ones():
    if not physics.available():
        pytest.skip(f"physics extra missing: {physics.INSTALL_COMMAND}")
    train, evaluation = (unwrapped(e) for e in make_envs(EnvConfig(env="ant-u4-maze-stitch")))
    layout = parse_layout("u4")
    assert train.pairs == stitching_pairs(layout, 1, 3) and evaluation.pairs == stitching_pairs(layout, 4, 6)
    assert set(train.pairs).isdisjoint(evaluation.pairs)
    assert train.episode_length == evaluation.episode_length == 1000


# ---- brax: the env contract under jit + vmap ----


@needs_brax
@pytest.mark.parametrize("name", catalog.ENVS)
def test_catalog_dims_match_the_built_envs(name):
    env, _ = make_envs(_config(name))
    task, spec = catalog.ENVS[name], env.spec
    assert (spec.obs_dim, spec.action_dim) == (task.obs_dim, task.action_dim)
    assert spec.obs_dim == spec.state_dim + spec.goal_dim and spec.goal_indices == tuple(range(spec.goal_dim))
    assert spec.episode_length == EPISODE and spec.name == name
    inner = unwrapped(env)
    if task.robot == "arm":  # the body order arm_state reads: cube, links 1-7 (hand fused in), fingers
        fingers = ["left_finger", "right_finger"]
        assert inner.system.link_names == ["cube", *(f"link{i}" for i in range(1, 8)), *fingers]
        assert (inner.system.q_size(), inner.system.act_size()) == (16, 9)
    else:
        assert inner.system.link_names[0] == "torso" and inner.system.act_size() == spec.action_dim


@needs_brax
@pytest.mark.parametrize("name", ALL)
def test_reset_and_step_under_jit_and_vmap(name):
    c = _compiled(name)
    spec, inner, step = c.env.spec, c.inner, c.step
    state = c.reset(jax.random.split(jax.random.PRNGKey(0), NUM_ENVS))
    assert state.obs.shape == (NUM_ENVS, spec.obs_dim) and state.obs.dtype == jnp.float32
    goal = c.physics(state).goal
    np.testing.assert_allclose(state.obs[:, spec.state_dim:], goal)  # obs = concat(state, goal)
    # goal_indices name the torso (cube) coordinates in the state.
    np.testing.assert_allclose(state.obs[:, np.array(spec.goal_indices)], c.reached(state), atol=1e-5)
    if getattr(inner, "maze", None) is not None:  # start at the reset cell, goal at a goal cell centre
        starts, goals = (inner.cell_centres(i) for i in inner._start_and_goal_cells)
        assert np.abs(state.obs[:, None, :2] - starts[None]).max(-1).min(-1).max() < 1e-5
        assert np.abs(np.asarray(goal)[:, None, :2] - goals[None]).max(-1).min(-1).max() < 1e-5
    actions = jax.random.uniform(jax.random.PRNGKey(1), (EPISODE, NUM_ENVS, spec.action_dim), minval=-1, maxval=1)
    for t in range(EPISODE):
        state = step(state, actions[t])
        assert np.isfinite(np.asarray(state.obs)).all()
        # no early termination: random actions cannot make the robot fall in 4 steps, the arm never ends early
        np.testing.assert_array_equal(state.done, float(c.wrapped and t == EPISODE - 1))
        np.testing.assert_array_equal(state.info["at_goal"], state.info["distance"] < spec.success_radius)
        np.testing.assert_array_equal(state.reward, state.info["at_goal"])
    if not c.wrapped:
        return
    assert {"episode_metrics", "episode_step", "truncated"} <= set(state.info)
    metrics = state.info["episode_metrics"]
    assert set(metrics) == set(EPISODE_METRICS)
    assert np.all((0 <= metrics["time_at_goal"]) & (metrics["time_at_goal"] <= 1))
    np.testing.assert_allclose(metrics["final_distance"], state.info["distance"])


@needs_brax
@pytest.mark.parametrize("name", ALL)
def test_goal_at_the_start_position_is_reached_and_the_sampled_goal_is_not(name):
    """Scripted: a goal placed where the robot (cube) starts gives success on every step with zero
    actions (the arm's zero action holds its start pose); the task's own goal is out of reach."""
    c = _compiled(name)
    state = c.reset(jax.random.split(jax.random.PRNGKey(2), NUM_ENVS))
    moved_goal = c.with_physics(state, c.physics(state).replace(goal=c.reached(state)))
    zero = jnp.zeros((NUM_ENVS, c.env.spec.action_dim))
    for _ in range(EPISODE):
        moved_goal, state = c.step(moved_goal, zero), c.step(state, zero)
        np.testing.assert_array_equal(moved_goal.info["at_goal"], 1.0)
        np.testing.assert_array_equal(state.info["at_goal"], 0.0)
    if not c.wrapped:
        return
    np.testing.assert_array_equal(moved_goal.info["episode_metrics"]["success"], 1.0)
    np.testing.assert_array_equal(moved_goal.info["episode_metrics"]["time_at_goal"], 1.0)
    np.testing.assert_array_equal(state.info["episode_metrics"]["success"], 0.0)


@needs_brax
@pytest.mark.xdist_group("physics_ant-u4-maze")
def test_ant_maze_walls_stop_the_ant():
    """Thrown at 8 m/s towards the wall east of the U4-maze's reset cell (its face at x = 8 m), the torso
    stops before it; without the wall it would travel ~4 m in the 0.2 s (x ≈ 10)."""
    c = _compiled("ant-u4-maze")
    state = c.reset(jax.random.split(jax.random.PRNGKey(3), NUM_ENVS))
    sys = c.inner.system
    q = jnp.asarray(sys.init_q).at[:3].set(jnp.array([6.0, 10.0, 0.75]))
    qd = jnp.zeros(sys.qd_size()).at[0].set(8.0)
    thrown = _init_physics("ant-u4-maze")(jnp.tile(q, (NUM_ENVS, 1)), jnp.tile(qd, (NUM_ENVS, 1)),
                                          c.physics(state).goal)
    state = c.with_physics(state, thrown)
    xs = []
    for _ in range(EPISODE):
        state = c.step(state, jnp.zeros((NUM_ENVS, c.env.spec.action_dim)))
        xs.append(np.asarray(state.obs[:, 0]))
    xs = np.array(xs)
    assert xs.max() < 8.0 - 0.2, xs  # the torso (radius 0.25) never enters the wall
    assert xs[0].min() > 6.3, xs  # and it did fly towards it


# The paper code's healthy torso heights (m), envs/ant.py, ant_maze.py, humanoid.py, humanoid_maze.py:
# an episode terminates on the step after which the torso's z leaves (low, high).
REFERENCE_HEALTHY_Z = {"ant-u4-maze": (0.2, 1.0), "humanoid": (1.0, 2.0)}


@needs_brax
@pytest.mark.parametrize("name", [pytest.param(name, marks=pytest.mark.xdist_group(f"physics_{name}"))
                                  for name in REFERENCE_HEALTHY_Z])
def test_torso_height_outside_the_reference_range_ends_the_episode(name):
    """Three envs: a standing robot, its torso placed 0.1 m under the range's low end and 0.1 m over its high
    end (at rest: one step moves it < 0.03 m). Only the last two episodes end, as terminations (not the time
    limit), after 1 step; --early-termination false keeps all three running (the arm has no termination)."""
    low, high = REFERENCE_HEALTHY_Z[name]
    c = _compiled(name)
    sys = c.inner.system
    state = c.reset(jax.random.split(jax.random.PRNGKey(4), NUM_ENVS))
    standing = float(c.physics(state).pipeline.x.pos[0, 0, 2])
    assert low < standing < high
    heights = jnp.array([standing, low - 0.1, high + 0.1])
    q = jnp.tile(jnp.asarray(sys.init_q), (NUM_ENVS, 1)).at[:, 2].set(heights)
    placed = _init_physics(name)(q, jnp.zeros((NUM_ENVS, sys.qd_size())), c.physics(state).goal)
    state = c.step(c.with_physics(state, placed), jnp.zeros((NUM_ENVS, c.env.spec.action_dim)))
    np.testing.assert_array_equal(state.done, [0.0, 1.0, 1.0])
    np.testing.assert_array_equal(state.info["truncated"], [0.0, 0.0, 0.0])
    np.testing.assert_array_equal(state.info["episode_metrics"]["episode_length"], [0.0, 1.0, 1.0])
    np.testing.assert_array_equal(state.info["episode_step"], [1, 0, 0])
    kept = dataclasses.replace(c.inner, terminate=False)
    assert unwrapped(make_envs(_config(name, early_termination=False))[0]) == kept


# ---- CRL on a physics env ----


@needs_brax
def test_crl_smoke_run_on_the_ant_writes_a_run_directory(tmp_path):
    """`depthrl train crl --env ant` end to end, a few hundred env steps. A subprocess, so that XLA compiles at
    optimisation level 0 (flags read when the backend starts): 40 s of CPU instead of 65 s in process."""
    from depthrl.training import runner

    run = tmp_path / "ant"
    flags = dict(env="ant", episode_length=10, depth=4, width=16, repr_dim=8, batch_size=16, num_envs=4,
                 unroll_length=10, sgd_steps_per_collect=2, total_env_steps=320, eval_every=160, num_eval_envs=2,
                 buffer_size=400, run_dir=run)
    command = [sys.executable, "-m", "depthrl.cli", "train", "crl", "--no-progress", "--no-plots",
               "--no-tensorboard", "--no-compile-cache"]
    for name, value in flags.items():
        command += [f"--{name.replace('_', '-')}", str(value)]
    quick = " ".join(f"--{k}={str(v).lower()}" for k, v in QUICK_COMPILE.items())
    xla_flags = f"{os.environ.get('XLA_FLAGS', '')} {quick}"
    done = subprocess.run(command, env={**os.environ, "XLA_FLAGS": xla_flags.strip()}, capture_output=True,
                          text=True, timeout=1200)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "final eval: success" in done.stdout
    assert json.loads((run / "config.json").read_text())["env"]["env"] == "ant"
    rows = runner.read_metrics(run)
    assert [r["env_steps"] for r in rows] == [160, 320]
    last = rows[-1]
    assert np.isfinite([last["critic/loss"], last["eval/final_distance"]]).all()
    assert 0 <= last["eval/time_at_goal"] <= 1 and last["eval/final_distance"] > 0
    assert any((run / "checkpoints").iterdir())


@needs_brax
@pytest.mark.slow
@pytest.mark.parametrize("backend", ["generalized", "mjx"])
def test_other_backends_step_the_ant(backend):
    env, _ = make_envs(dataclasses.replace(_config("ant"), physics_backend=backend))
    state = jax.jit(env.reset)(jax.random.PRNGKey(0))
    state = jax.jit(env.step)(state, jnp.zeros(env.spec.action_dim))
    assert state.obs.shape == (31,) and np.isfinite(np.asarray(state.obs)).all()
    assert 0.2 < float(state.obs[2]) < 1.0  # the torso stands at a sane height
