"""Tests for depthrl.envs.crawler: the contract (shapes, goal indices, jit + vmap), the gait rule computed by
hand, walls (no tunnelling, reusing the point-maze checks), success, and the registry's crawler names."""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from test_maze import assert_clear_of_walls, assert_segments_clear

from depthrl.envs.crawler import CrawlerMaze
from depthrl.envs.registry import EnvConfig, make_envs
from depthrl.envs.wrappers import unwrapped

OPEN = "/".join(["B" * 21] * 21)  # a large room: the gait tests never touch a wall


def _set(state, **physics):
    env_state = state.physics.replace(**{k: jnp.asarray(v, jnp.float32) for k, v in physics.items()})
    return state.replace(physics=env_state)


@functools.partial(jax.jit, static_argnums=0)
def _rollout(env, state, actions):
    """Physics after each step [T, ...] under actions [T, (N,) action_dim] (state batched like actions)."""
    step = env.step if actions.ndim == 2 else jax.vmap(env.step)

    def body(state, action):
        state = step(state, action)
        return state, state.physics

    return jax.lax.scan(body, state, actions)[1]


def test_spec_obs_layout_and_goal_indices():
    env = CrawlerMaze("u4")
    spec = env.spec
    assert (spec.obs_dim, spec.action_dim, spec.state_dim, spec.goal_indices) == (14, 4, 12, (0, 1))
    assert spec.episode_length == 300  # 30 steps per cell of the 10-cell path, at least 200
    assert CrawlerMaze("u").spec.episode_length == 200 and CrawlerMaze("u", num_joints=6).spec.state_dim == 16
    state = jax.jit(env.reset)(jax.random.PRNGKey(0))
    p, obs = state.physics, np.asarray(state.obs)
    np.testing.assert_allclose(obs[:2], p.pos)  # goal_indices pick the base position out of the state
    np.testing.assert_allclose(obs[12:], p.goal)  # obs = concat(state, goal)
    np.testing.assert_allclose(obs[2:4], [math.cos(p.heading), math.sin(p.heading)], atol=1e-6)
    np.testing.assert_allclose(obs[4:8], p.q) and np.testing.assert_allclose(obs[8:12], 0.0)
    assert np.all(np.abs(obs[4:8]) <= env.reset_angle)
    hash(env)
    with pytest.raises(ValueError, match="num_joints"):
        CrawlerMaze("u", num_joints=1)


def test_jit_vmap_matches_single_env_and_is_deterministic():
    env = CrawlerMaze("hardest", random_start=True)
    keys = jax.random.split(jax.random.PRNGKey(1), 8)
    batch = jax.jit(jax.vmap(env.reset))(keys)
    actions = jax.random.uniform(jax.random.PRNGKey(2), (20, 8, 4), minval=-1, maxval=1)
    batched = _rollout(env, batch, actions)
    for i in (0, 5):
        single = _rollout(env, env.reset(keys[i]), actions[:, i])
        np.testing.assert_allclose(batched.pos[:, i], single.pos, atol=1e-5)
        np.testing.assert_allclose(batched.q[:, i], single.q, atol=1e-6)
    np.testing.assert_array_equal(_rollout(env, batch, actions).pos, batched.pos)


def test_joint_dynamics_by_hand():
    env = CrawlerMaze(OPEN)
    state = _set(env.reset(jax.random.PRNGKey(0)), q=np.zeros(4), dq=[1.0, -1.0, 0.0, 2.9])
    action = jnp.array([1.0, 0.5, np.nan, 5.0])  # nan acts as 0, 5 is clipped to 1
    p = env.step(state, action).physics
    # dq = clip(0.5 dq + 20 · 0.1 · a, ±3): [2.5, 0.5, 0, 3]; q = 0.1 dq.
    np.testing.assert_allclose(p.dq, [2.5, 0.5, 0.0, 3.0], atol=1e-6)
    np.testing.assert_allclose(p.q, [0.25, 0.05, 0.0, 0.3], atol=1e-6)
    # A joint driven into its limit stops there with zero velocity.
    p = env.step(_set(state, q=[0.95, 0, 0, 0], dq=[3.0, 0, 0, 0]), jnp.array([1.0, 0, 0, 0])).physics
    assert float(p.q[0]) == pytest.approx(env.max_angle) and float(p.dq[0]) == 0.0


def test_base_moves_only_by_a_coordinated_gait():
    env = CrawlerMaze(OPEN)
    start = _set(env.reset(jax.random.PRNGKey(0)), pos=[10.5, 10.5], heading=0.0, q=np.zeros(4), dq=np.zeros(4))
    # One joint alone, or all joints in phase, sweep no area: the base stays where it is.
    t = np.arange(60)[:, None] * np.ones((1, 4))
    one = np.zeros((60, 4), np.float32)
    one[:, 1] = np.sign(np.sin(t[:, 1] / 3))
    for actions in (one, np.sign(np.sin(t / 3)).astype(np.float32)):
        p = _rollout(env, start, jnp.asarray(actions))
        np.testing.assert_allclose(p.pos[-1], [10.5, 10.5], atol=1e-5)
    # A travelling wave (a circle in each neighbouring pair's shape plane) moves it along its heading, and the
    # reversed wave moves it back. One step of the swept-area rule, by hand: q (0.2, 0, 0, 0) → (0.2, 0.1, ·):
    # area = (0.2·0.1 − 0·0.2) / 3, speed = 0.5 · area / 0.1.
    s = _set(start, q=[0.2, 0, 0, 0], dq=[0, 0.5, 0, 0])
    p = env.step(s, jnp.array([0.0, 0.375, 0.0, 0.0])).physics  # dq_1 = 0.25 + 0.75 = 1 → q_1 = 0.1
    speed, heading = 0.5 * (0.2 * 0.1) / 3 / 0.1, 2.0 * (0.2 + 0.1) / 4 * 0.1  # the heading turns first
    np.testing.assert_allclose(p.heading, heading, rtol=1e-5)
    np.testing.assert_allclose(p.pos, 10.5 + speed * 0.1 * np.array([np.cos(heading), np.sin(heading)]), atol=1e-6)
    phase = 2 * np.pi * (np.arange(80)[:, None] / 12 - np.arange(4)[None, :] / 4)
    wave = np.clip(3 * np.cos(phase), -1, 1).astype(np.float32)
    forward, backward = _rollout(env, start, jnp.asarray(wave)), _rollout(env, start, jnp.asarray(wave[:, ::-1]))
    dx_f = float(forward.pos[-1, 0] - 10.5)
    assert dx_f > 3.0 and float(backward.pos[-1, 0] - 10.5) < -3.0  # ≥ 3 cells in 8 s, either way
    assert abs(float(forward.heading[-1])) < 0.5  # a balanced wave keeps the heading


def test_a_bent_body_turns_at_the_turn_rate():
    env = CrawlerMaze(OPEN)
    s = _set(env.reset(jax.random.PRNGKey(0)), pos=[10.5, 10.5], heading=0.0, q=[0.5, 0.5, 0.5, 0.5], dq=np.zeros(4))
    p = _rollout(env, s, jnp.zeros((10, 4)))  # joints hold still: no motion, a constant turn
    np.testing.assert_allclose(p.heading[-1], 10 * env.turn_rate * 0.5 * env.dt, atol=1e-5)
    np.testing.assert_allclose(p.pos[-1], [10.5, 10.5], atol=1e-6)


@pytest.mark.parametrize("layout", ["u", "hardest"])
def test_no_tunnelling_under_random_and_fast_gaits(layout):
    env = CrawlerMaze(layout, random_start=True, max_speed=2.0, propulsion=1.5)  # the point mass's top speed
    n, steps = 128, 120
    rng = np.random.default_rng(0)
    state = jax.vmap(env.reset)(jax.random.split(jax.random.PRNGKey(3), n))
    phase = 2 * np.pi * (np.arange(steps)[:, None, None] / 8 - np.arange(4) / 4 + rng.uniform(0, 1, (n, 1)))
    actions = np.clip(3 * np.cos(phase), -1, 1) * rng.choice([-1, 1], (1, n, 1))  # waves both ways
    actions[:, : n // 4] = rng.uniform(-1, 1, (steps, n // 4, 4))  # and random flailing
    positions = np.asarray(_rollout(env, state, jnp.asarray(actions, jnp.float32)).pos)
    positions = np.concatenate([np.asarray(state.physics.pos)[None], positions])
    assert np.abs(positions[-1] - positions[0]).max() > 2.0  # some crawlers went far (into walls)
    assert_clear_of_walls(env, positions)
    assert_segments_clear(env, positions)


def test_success_and_reward_follow_the_base_distance():
    env = CrawlerMaze("open")
    s = env.reset(jax.random.PRNGKey(4))
    for offset, expected in ((0.3, 1.0), (0.6, 0.0)):
        s2 = env.step(_set(s, pos=s.physics.goal + jnp.array([offset, 0.0]), dq=np.zeros(4), q=np.zeros(4)),
                      jnp.zeros(4))
        assert float(s2.info["distance"]) == pytest.approx(offset, abs=1e-5)
        assert float(s2.reward) == float(s2.info["at_goal"]) == expected


def test_registry_builds_crawlers_with_the_maze_flags():
    train, evaluation = make_envs(EnvConfig(env="crawler-maze-u4", stitching=True))
    maze = unwrapped(train)
    assert isinstance(maze, CrawlerMaze) and maze.pairs and unwrapped(evaluation).pairs
    assert train.spec.state_dim == 12 and train.spec.episode_length == evaluation.spec.episode_length
    train, _ = make_envs(EnvConfig(env="crawler-maze", layout="#####/#R..#/#.#G#/#####", success_radius=0.3,
                                   episode_length=77))
    assert unwrapped(train).success_radius == 0.3 and train.spec.episode_length == 77
