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
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from depthrl.commands import envs as list_cli
from depthrl.envs import physics
from depthrl.envs.maze import parse_layout
from depthrl.envs.physics import catalog
from depthrl.envs.physics.assets import wall_boxes
from depthrl.envs.registry import EnvConfig, list_envs, make_envs
from depthrl.envs.stitching import stitching_pairs
from depthrl.envs.wrappers import EPISODE_METRICS, unwrapped
from depthrl.errors import ConfigError
from tiny_runs import FAST_COMPILE

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
        """[N, goal_dim] the coordinates a goal names, read from the simulator (torso, cube or, for arm-reach, the
        hand: link 7, the 7th body)."""
        body = 6 if self.env.spec.name == "arm-reach" else 0
        return self.physics(state).pipeline.x.pos[:, body, : self.env.spec.goal_dim]


@functools.cache
def _compiled(name: str) -> Compiled:
    """Built and compiled once per test session and env (the tests share the programs, for NUM_ENVS envs). The
    reset and the step compile side by side (`runner.compile_concurrently`: XLA compiles outside the GIL)."""
    from depthrl.training.runner import compile_concurrently

    env, _ = make_envs(_config(name))
    mjx = catalog.ENVS[name].backend == "mjx"
    if mjx:
        env = unwrapped(env)
    options = FAST_COMPILE
    reset = jax.jit(jax.vmap(env.reset), compiler_options=options)
    step = jax.jit(jax.vmap(env.step), compiler_options=options)
    keys = jax.random.split(jax.random.PRNGKey(0), NUM_ENVS)
    state = jax.eval_shape(reset, keys)
    actions = jax.ShapeDtypeStruct((NUM_ENVS, env.spec.action_dim), jnp.float32)
    return Compiled(env, *compile_concurrently([reset.lower(keys), step.lower(state, actions)]), wrapped=not mjx)


@functools.cache
def _init_physics(name: str):
    """Jitted, vmapped `init_physics(q, qd, goal)` of an env, compiled once per session (tests share it)."""
    return jax.jit(jax.vmap(_compiled(name).inner.init_physics), compiler_options=FAST_COMPILE)


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
            x, y = (r - 1) * scale, (c - 1) * scale  # cell (row, column) is centred at (row, column) × scale
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


# The paper code's state sizes and goal indices (train.py `obs_dim`, `goal_start_idx`..`goal_end_idx`; the goal
# follows the state in the observation), by robot, or by task where a task differs from its robot's.
REFERENCE_STATE_DIM = {"ant": 29, "humanoid": 268, "arm": 17, "arm-reach": 13}
REFERENCE_GOAL_INDICES = {"ant": (0, 1), "humanoid": (0, 1, 2), "arm": (0, 1, 2), "arm-reach": (7, 8, 9)}


@needs_brax
@pytest.mark.parametrize("name", catalog.ENVS)
def test_catalog_dims_match_the_built_envs(name):
    env, _ = make_envs(_config(name))
    task, spec = catalog.ENVS[name], env.spec
    assert (spec.obs_dim, spec.action_dim) == (task.obs_dim, task.action_dim)
    assert spec.obs_dim == spec.state_dim + spec.goal_dim and spec.episode_length == EPISODE and spec.name == name
    assert spec.state_dim == REFERENCE_STATE_DIM.get(name, REFERENCE_STATE_DIM[task.robot])
    assert spec.goal_indices == REFERENCE_GOAL_INDICES.get(name, REFERENCE_GOAL_INDICES[task.robot])
    inner = unwrapped(env)
    links = [f"link{i}" for i in range(1, 8)]  # the body order arm_state reads: links 1-7, the hand fused in
    if name == "arm-reach":  # the Panda without fingers, no cube
        assert inner.system.link_names == links and (inner.system.q_size(), inner.system.act_size()) == (7, 7)
    elif task.robot == "arm":  # cube, links, fingers
        assert inner.system.link_names == ["cube", *links, "left_finger", "right_finger"]
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
    if catalog.ENVS[name].robot == "arm" and name != "arm-reach":  # the reference drops the cube from 0.07 m
        np.testing.assert_allclose(state.obs[:, 2], 0.07, atol=1e-6)
    if catalog.ENVS[name].robot == "humanoid":  # the paper's goal body (q's last two entries) sits at the goal
        np.testing.assert_allclose(c.physics(state).pipeline.q[:, -2:], goal[:, :2])
    if getattr(inner, "maze", None) is not None:  # start at the reset cell, goal at a goal cell centre
        starts, goals = (inner.cell_centres(i) for i in inner._start_and_goal_cells)
        # the paper's Ant start noise: uniform ±0.1 on every q entry (torso x, y included); the Humanoid has none
        start_error = np.abs(state.obs[:, None, :2] - starts[None]).max(-1).min(-1)
        if inner.robot == "ant":
            assert 1e-3 < start_error.max() <= 0.1 + 1e-5
        else:
            assert start_error.max() < 1e-5
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
@pytest.mark.parametrize("name", [p for p in ALL if p.values[0] != "arm-reach"])  # arm-reach: the test after this
def test_goal_at_the_start_position_is_reached_and_the_sampled_goal_is_not(name):
    """Scripted: a goal placed where the robot (cube) starts gives success on every step with zero
    actions (the cube stays where the arm does not push it); the task's own goal is out of reach."""
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
@pytest.mark.xdist_group("physics_arm-push-easy")
def test_arm_state_round_trips_through_a_checkpoint(tmp_path):
    """The MJX arm's state, saved and restored as a training checkpoint (the train state holds it): every array
    back bit for bit, its zero-size ones (`act`: the arm has no actuator activations; orbax refuses zero-size
    arrays) in their empty shape. The arm presets' smoke runs (tests/commands/test_presets.py, -m slow)
    checkpoint and restore it inside a whole run."""
    from depthrl.training import checkpoint as ckpt

    c = _compiled("arm-push-easy")
    state = c.reset(jax.random.split(jax.random.PRNGKey(5), NUM_ENVS))
    leaves = jax.tree.leaves(state)
    assert any(leaf.size == 0 for leaf in leaves)
    path = ckpt.save(tmp_path, 1, state)
    assert ckpt.verify(path) is None
    restored = ckpt.restore(path, jax.tree.map(np.zeros_like, state))
    assert jax.tree.structure(restored) == jax.tree.structure(state)
    for got, want in zip(jax.tree.leaves(restored), leaves, strict=True):
        assert (got.shape, got.dtype) == (want.shape, want.dtype)
        np.testing.assert_array_equal(got, want)


@needs_brax
@pytest.mark.slow  # the fast reach tests: test_arm_reach_model_and_goals_are_the_reference and the dims test
def test_arm_reach_goal_where_the_hand_goes_is_reached():
    """Scripted: the zero action sends arm-reach's hand away from its start (joints 4-7 settle short of their
    targets); a goal placed where the hand is after 4 steps (more than the radius from its start) is reached on
    that step: the goal names the hand's position."""
    c = _compiled("arm-reach")
    start = c.reset(jax.random.split(jax.random.PRNGKey(2), NUM_ENVS))
    zero = jnp.zeros((NUM_ENVS, c.env.spec.action_dim))
    state = start
    for _ in range(EPISODE):
        state = c.step(state, zero)
    end = c.reached(state)
    assert np.linalg.norm(end - c.reached(start), axis=-1).min() > 0.1  # the hand moved further than the radius
    state = c.with_physics(start, c.physics(start).replace(goal=end))
    for _ in range(EPISODE):
        state = c.step(state, zero)
    np.testing.assert_array_equal(state.info["at_goal"], 1.0)
    np.testing.assert_allclose(state.info["distance"], 0.0, atol=1e-5)


@needs_brax
@pytest.mark.xdist_group("physics_ant-u4-maze")
def test_ant_maze_walls_stop_the_ant():
    """Thrown at 8 m/s along +x from the U4-maze's reset cell (row 2, column 1: x = 8, y = 4) towards the wall
    cell below it (row 3, its face at x = 10 m), the torso stops before it; without the wall it would travel
    ~4 m in the 0.2 s (x ≈ 12)."""
    c = _compiled("ant-u4-maze")
    state = c.reset(jax.random.split(jax.random.PRNGKey(3), NUM_ENVS))
    sys = c.inner.system
    q = jnp.asarray(sys.init_q).at[:3].set(jnp.array([8.0, 4.0, 0.75]))
    qd = jnp.zeros(sys.qd_size()).at[0].set(8.0)
    thrown = _init_physics("ant-u4-maze")(jnp.tile(q, (NUM_ENVS, 1)), jnp.tile(qd, (NUM_ENVS, 1)),
                                          c.physics(state).goal)
    state = c.with_physics(state, thrown)
    xs = []
    for _ in range(EPISODE):
        state = c.step(state, jnp.zeros((NUM_ENVS, c.env.spec.action_dim)))
        xs.append(np.asarray(state.obs[:, 0]))
    xs = np.array(xs)
    assert xs.max() < 10.0 - 0.2, xs  # the torso (radius 0.25) never enters the wall
    assert xs[0].min() > 8.3, xs  # and it did fly towards it


# The paper code's effective env step (s): spring physics step × 10 frames (scaling-crl envs/ant*.py, humanoid*.py;
# its open Humanoid's 0.0015 s override is not read by brax 0.10.1's spring pipeline: the asset's 0.003 s runs).
# The arm: MJX, 0.002 s × 25 frames (envs/manipulation/arm_envs.py).
REFERENCE_DT = {"ant": 0.05, "ant-u4-maze": 0.05, "humanoid": 0.03, "humanoid-u-maze": 0.015, "arm-push-easy": 0.05}


@needs_brax
@pytest.mark.parametrize("name", list(REFERENCE_DT))
def test_env_step_is_the_reference_effective_dt(name):
    env = unwrapped(make_envs(_config(name))[0])
    arm = name.startswith("arm")
    assert (env.backend, env.n_frames) == (("mjx", 25) if arm else ("spring", 10))
    assert env.dt == pytest.approx(REFERENCE_DT[name], rel=1e-6)


@needs_brax
def test_humanoid_u_maze_geometry_is_the_reference_not_mirrored():
    """The paper code's humanoid U-maze (2 m cells, cell (row, column) at (row, column) × 2): the Humanoid starts
    at (2, 2) facing +x (identity quaternion), with the wall 1 m ahead (its face at x = 3) and 1 m behind, the
    corridor open along +y up to y = 7; goals at the six cells of its U_MAZE."""
    import mujoco

    from depthrl.envs.physics.assets import humanoid_xml

    env = unwrapped(make_envs(_config("humanoid-u-maze"))[0])
    starts, goals = (env.cell_centres(i) for i in env._start_and_goal_cells)
    np.testing.assert_allclose(starts, [[2.0, 2.0]])
    assert {tuple(g) for g in goals.tolist()} == {(2.0, 4.0), (2.0, 6.0), (4.0, 6.0), (6.0, 2.0), (6.0, 4.0),
                                                   (6.0, 6.0)}
    model = mujoco.MjModel.from_xml_string(humanoid_xml(env.maze, env.cell_size))
    np.testing.assert_allclose(model.qpos0[3:7], [1.0, 0.0, 0.0, 0.0])  # facing +x
    walls = [i for i in range(model.ngeom) if model.geom(i).name.startswith("wall_")]
    pos, half = model.geom_pos[walls, :2], model.geom_size[walls, :2]

    def free_run(origin, axis, sign):
        """Distance from `origin` along ±axis to the first wall face."""
        other = 1 - axis
        on_line = np.abs(pos[:, other] - origin[other]) < half[:, other]
        faces = pos[on_line, axis] - sign * half[on_line, axis]
        ahead = sign * (faces - origin[axis])
        return ahead[ahead > 0].min()

    start = starts[0]
    np.testing.assert_allclose(env.drawing_xy(start), [1.5, 1.5])  # row 1, column 1 on the maze drawing
    np.testing.assert_allclose(env.drawing_xy(np.array([6.0, 2.0])), [1.5, 3.5])  # row 3, column 1
    assert free_run(start, 0, +1) == pytest.approx(1.0)  # the wall ahead
    assert free_run(start, 0, -1) == pytest.approx(1.0)
    assert free_run(start, 1, +1) == pytest.approx(5.0)  # the corridor: cells (1, 1)..(1, 3)
    assert free_run(start, 1, -1) == pytest.approx(1.0)


@needs_brax
def test_humanoid_body_geoms_touch_the_floor_and_carry_the_goal_body():
    """The paper's humanoid.xml: every body geom contype 1 / conaffinity 0 (floor and walls, not each other), and a
    `target` body on two slide joints (q's last two entries; reset puts it at the goal, checked in
    test_reset_and_step_under_jit_and_vmap), mass 1, without contacts."""
    import mujoco

    from depthrl.envs.physics.assets import humanoid_xml

    model = mujoco.MjModel.from_xml_string(humanoid_xml(None))
    target = model.body("target").id
    for i in range(model.ngeom):
        geom = model.geom(i)
        if geom.name == "floor":
            assert model.geom_conaffinity[i] == 1
        elif model.geom_bodyid[i] == target:
            assert (model.geom_contype[i], model.geom_conaffinity[i]) == (0, 0)
        else:
            assert (model.geom_contype[i], model.geom_conaffinity[i]) == (1, 0), geom.name
    assert [model.joint(j).name for j in range(model.njnt)][-2:] == ["target_x", "target_y"]
    assert model.body_mass[target] == pytest.approx(1.0)


@needs_brax
def test_ant_maze_contacts_are_the_reference():
    """The paper's ant_maze.xml: torso, hips and feet conaffinity 1, feet contype 1, the rest of the body neither."""
    import mujoco

    from depthrl.envs.physics.assets import ant_xml

    model = mujoco.MjModel.from_xml_string(ant_xml(parse_layout("u4")))
    for i in range(model.ngeom):
        name = model.geom(i).name
        if name == "floor" or name.startswith("wall_"):
            continue
        hip_or_torso, foot = name == "torso_geom" or name.startswith("aux_"), name.endswith("_foot_geom")
        assert model.geom_contype[i] == int(foot), name
        assert model.geom_conaffinity[i] == int(hip_or_torso or foot), name


# The paper's Panda (scaling-crl envs/assets/panda_push_easy.xml and siblings): actuator gain / stiffness per arm
# joint (4500/4500 on joints 1-2, 2000/3500 on 3-4, 1000/2000 on 5-7), the fraction of its command a joint settles
# at without gravity; fingers 0-0.08 m with gain 0.15686 against stiffness 500 (command 255 = fully open).
REFERENCE_SETTLE_FRACTION = (1.0, 1.0, 2000 / 3500, 2000 / 3500, 0.5, 0.5, 0.5)


@needs_brax
def test_arm_joints_settle_at_the_reference_fraction_of_their_command():
    """Plain MuJoCo on the arm's model (CPU, no MJX), gravity and contacts off: after 4 s each joint rests at the
    reference's fraction of its command, and the fingers at 0.15686 × command / 500 m. With gravity, the cube
    starts at the reference's drop height 0.07 m and lands on the table (its centre at 0.03 m)."""
    import mujoco

    from depthrl.envs.physics.arm import ARM_START, panda_xml

    model = mujoco.MjModel.from_xml_string(panda_xml("push-easy"))
    data = mujoco.MjData(model)
    assert model.body("cube").pos[2] == pytest.approx(0.07)
    np.testing.assert_allclose(model.jnt_range[model.joint("left_finger_joint").id], [0.0, 0.08])
    model.opt.gravity[:] = 0.0
    model.opt.disableflags |= mujoco.mjtDisableBit.mjDSBL_CONTACT
    arm = slice(7, 14)  # qpos: cube (7), arm (7), fingers (2)
    data.qpos[arm] = ARM_START
    command = np.array([1.2, 0.5, 0.7, -1.4, 0.8, 3.0, 1.4487])
    data.ctrl[:] = [*command, 127.5, 127.5]
    mujoco.mj_step(model, data, nstep=2000)
    np.testing.assert_allclose(data.qpos[arm], command * np.array(REFERENCE_SETTLE_FRACTION), atol=2e-3)
    np.testing.assert_allclose(data.qpos[14:], 0.15686 * 127.5 / 500, atol=5e-4)  # 0.04 m per finger
    model = mujoco.MjModel.from_xml_string(panda_xml("push-easy"))
    data = mujoco.MjData(model)
    data.qpos[arm], data.ctrl[:7] = ARM_START, ARM_START
    mujoco.mj_step(model, data, nstep=250)
    assert data.qpos[2] == pytest.approx(0.03, abs=2e-3)


# The paper code's arm_reach (envs/manipulation/arm_reach.py, envs/assets/panda_reach.xml, train.py): the Panda
# without fingers; goal = the hand (link 7) position, drawn from (0, 0.5, 0.3) + U(-0.2, 0.2) per axis; success
# within 0.1 m; 1000 steps per episode. The positions below come from plain MuJoCo on the paper's panda_reach.xml
# (arm at the start pose; then 1 s of the commands in REACH_COMMAND with gravity).
REACH_START_HAND = (-1.38099e-04, 0.678043, 0.370831)
REACH_COMMAND = (1.2, 0.5, 0.0, -1.4, 0.0, 3.0, 1.4487)
REACH_AFTER_1S_Q = (1.200017, 0.509726, -1.33922e-04, -0.805990, -3.07900e-04, 1.499775, 0.724463)
REACH_AFTER_1S_HAND = (0.240452, 0.618368, 0.761404)


@needs_brax
def test_arm_reach_model_and_goals_are_the_reference():
    """arm-reach (no compile: plain MuJoCo on its model, goals drawn op by op): the hand where the paper's model
    puts it at the start and after 1 s of commands; only the hand touches the table; the goals fill the
    reference's box; the spec's dims, goal indices, radius, episode length and step."""
    import mujoco

    from depthrl.envs.physics.arm import ARM_START, panda_xml

    env = unwrapped(make_envs(EnvConfig(env="arm-reach"))[0])
    spec = env.spec
    assert (spec.obs_dim, spec.state_dim, spec.action_dim, spec.goal_indices) == (16, 13, 4, (7, 8, 9))
    assert (spec.success_radius, spec.episode_length, env.dt) == (0.1, 1000, pytest.approx(0.05))
    model = mujoco.MjModel.from_xml_string(panda_xml("reach"))
    assert (model.nq, model.nu, model.npair) == (7, 7, 1)
    assert {model.geom(model.pair_geom1[0]).name, model.geom(model.pair_geom2[0]).name} == {"table", "hand_geom"}
    data = mujoco.MjData(model)
    data.qpos[:] = ARM_START
    mujoco.mj_forward(model, data)
    hand = model.body("link7").id
    np.testing.assert_allclose(data.xpos[hand], REACH_START_HAND, atol=1e-5)
    data.ctrl[:] = REACH_COMMAND
    mujoco.mj_step(model, data, nstep=500)
    np.testing.assert_allclose(data.qpos, REACH_AFTER_1S_Q, atol=1e-4)
    np.testing.assert_allclose(data.xpos[hand], REACH_AFTER_1S_HAND, atol=1e-4)
    goals = np.asarray(jax.vmap(env.goal)(jax.random.split(jax.random.PRNGKey(0), 4000)))
    centre = np.array([0.0, 0.5, 0.3])
    np.testing.assert_array_less(np.abs(goals - centre), 0.2)
    np.testing.assert_allclose(np.abs(goals - centre).max(axis=0), 0.2, atol=0.005)  # the whole box is drawn
    cube_goals = np.asarray(jax.vmap(unwrapped(make_envs(EnvConfig(env="arm-push-easy"))[0]).goal)(
        jax.random.split(jax.random.PRNGKey(0), 100)))
    np.testing.assert_allclose(cube_goals[:, 2], 0.03)  # a cube's goal rests on the table
    np.testing.assert_array_less(np.abs(cube_goals[:, :2] - [0.1, 0.6]), 0.1)


# The paper's bins (envs/assets/panda_binpick_hard.xml, panda_binpick_easy.xml): centres of the blue and red bins,
# the offset of the walls from a centre and their long half length; cube start and goal centres.
REFERENCE_BINS = {"binpick-hard": ((-0.3, 0.6), (0.3, 0.6), 0.19, 0.195, (-0.3, 0.6), (0.3, 0.6)),
                  "binpick-easy": ((-0.17, 0.6), (0.17, 0.6), 0.14, 0.145, (-0.15, 0.6), (0.17, 0.6))}


@needs_brax
@pytest.mark.parametrize("task", list(REFERENCE_BINS))
def test_arm_bins_are_the_reference(task):
    import mujoco

    from depthrl.envs.physics.arm import ARM_TASKS, panda_xml

    blue, red, offset, half, cube, goal = REFERENCE_BINS[task]
    assert (ARM_TASKS[task].cube_xy, ARM_TASKS[task].goal_xy) == (cube, goal)
    model = mujoco.MjModel.from_xml_string(panda_xml(task))
    data = mujoco.MjData(model)
    mujoco.mj_forward(model, data)
    for label, centre in (("A", blue), ("B", red)):
        walls = [model.geom(f"bin{label}{i}").id for i in range(4)]
        xy = data.geom_xpos[walls, :2] - np.asarray(centre)
        np.testing.assert_allclose(xy, [[0, -offset], [0, offset], [offset, 0], [-offset, 0]], atol=1e-9)
        np.testing.assert_allclose(model.geom_size[walls, :2].max(axis=1), [half, half, half - 0.01, half - 0.01])


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
def test_crl_smoke_run_on_the_ant_writes_a_run_directory(tmp_path, capsys):
    """`depthrl train crl --env ant` end to end, a few hundred env steps (in this process: the suite already
    compiles at XLA optimisation level 0, tests/conftest.py)."""
    from depthrl import cli
    from depthrl.training import runner

    run = tmp_path / "ant"
    flags = dict(env="ant", episode_length=10, depth=4, width=16, norm="none", repr_dim=8, batch_size=16, num_envs=4,
                 unroll_length=10, sgd_steps_per_collect=2, total_env_steps=320, eval_every=160, num_eval_envs=2,
                 buffer_size=400, run_dir=run)
    argv = ["train", "crl", "--no-progress", "--no-plots", "--no-tensorboard", "--no-compile-cache"]
    for name, value in flags.items():
        argv += [f"--{name.replace('_', '-')}", str(value)]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert "final eval: success" in out
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
