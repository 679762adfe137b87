"""Tests for depthrl.envs.wrappers: time limit, auto-reset, episode_step, episode metrics, batching."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from depthrl.envs.maze import PointMaze
from depthrl.envs.wrappers import EpisodeWrapper, VmapWrapper, unwrapped

LENGTH = 5


def _roll(env, state, actions, batched: bool):
    """Scan `actions` [T, N, 2] through `env`; returns the stacked states after each step."""
    step = env.step if batched else jax.vmap(env.step)

    def body(state, action):
        state = step(state, action)
        return state, state

    return jax.jit(lambda s, a: jax.lax.scan(body, s, a))(state, actions)


def test_episode_step_done_and_auto_reset_follow_the_time_limit():
    maze = PointMaze("u")
    env = EpisodeWrapper(maze, LENGTH)
    key = jax.random.PRNGKey(7)
    state = env.reset(key)
    assert int(state.info["episode_step"]) == 0 and state.info["episode_step"].dtype == jnp.int32
    assert float(state.done) == 0.0
    steps, dones, obs = [], [], []
    step = jax.jit(env.step)
    for _ in range(2 * LENGTH + 2):
        state = step(state, jnp.array([0.3, 0.0]))
        steps.append(int(state.info["episode_step"]))
        dones.append(float(state.done))
        obs.append(np.asarray(state.obs))
    assert steps == [1, 2, 3, 4, 0, 1, 2, 3, 4, 0, 1, 2]
    assert dones == [0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0]
    # After the first episode the obs is the next episode's first obs, drawn from the carried key chain.
    key, first = jax.random.split(key)
    np.testing.assert_array_equal(env.reset(jax.random.PRNGKey(7)).obs, maze.reset(first).obs)
    key, second = jax.random.split(key)
    np.testing.assert_array_equal(obs[LENGTH - 1], maze.reset(second).obs)
    _, third = jax.random.split(key)
    np.testing.assert_array_equal(obs[2 * LENGTH - 1], maze.reset(third).obs)
    assert env.spec.episode_length == LENGTH


def test_episode_metrics_match_the_per_step_info():
    env = EpisodeWrapper(PointMaze("open"), LENGTH)
    n, steps = 64, 3 * LENGTH
    state = jax.vmap(env.reset)(jax.random.split(jax.random.PRNGKey(0), n))
    # Policy: toward the goal for some envs, still for others, so metrics vary.
    actions = jax.random.uniform(jax.random.PRNGKey(1), (steps, n, 2), minval=-1, maxval=1)
    _, states = _roll(env, state, actions, batched=False)
    at_goal = np.asarray(states.info["at_goal"]).reshape(3, LENGTH, n)
    distance = np.asarray(states.info["distance"]).reshape(3, LENGTH, n)
    done = np.asarray(states.done).reshape(3, LENGTH, n)
    assert (done[:, -1] == 1).all() and (done[:, :-1] == 0).all()
    metrics = {
        k: np.asarray(v).reshape(3, LENGTH, n)[:, -1] for k, v in states.info["episode_metrics"].items()
    }
    np.testing.assert_allclose(metrics["time_at_goal"], at_goal.mean(1), rtol=1e-6)
    np.testing.assert_array_equal(metrics["success"], at_goal.max(1))
    np.testing.assert_array_equal(metrics["final_distance"], distance[:, -1])
    # Between episode ends the metrics hold the last finished episode's values.
    held = np.asarray(states.info["episode_metrics"]["time_at_goal"]).reshape(3, LENGTH, n)
    np.testing.assert_array_equal(held[1, :-1], np.broadcast_to(held[0, -1], held[1, :-1].shape))
    running = np.asarray(states.info["episode_running"]["steps_at_goal"]).reshape(3, LENGTH, n)
    np.testing.assert_array_equal(running[:, :-1], np.cumsum(at_goal, 1)[:, :-1])
    assert (running[:, -1] == 0).all()
    np.testing.assert_array_equal(states.info["truncated"], states.done)


def test_straight_controller_succeeds_and_zero_policy_fails_in_the_open_room():
    maze = PointMaze("open")
    length = maze.spec.episode_length
    env = EpisodeWrapper(maze, length)
    n = 256
    state = jax.vmap(env.reset)(jax.random.split(jax.random.PRNGKey(0), n))
    start_distance = np.asarray(state.info["distance"])

    def run(policy):
        def body(state, _):
            state = jax.vmap(env.step)(state, policy(state.obs))
            return state, state.info["episode_metrics"]

        _, metrics = jax.jit(lambda s: jax.lax.scan(body, s, None, length=length))(state)
        return {k: np.asarray(v[-1]) for k, v in metrics.items()}

    straight = run(lambda obs: jnp.clip(4.0 * (obs[:, 4:] - obs[:, :2]) - 0.8 * obs[:, 2:4], -1, 1))
    assert (straight["success"] == 1).all()
    assert (straight["time_at_goal"] > 0.5).all()
    assert (straight["final_distance"] < maze.success_radius).all()
    zero = run(lambda obs: jnp.zeros_like(obs[:, :2]))
    far = start_distance >= maze.success_radius
    assert far.sum() > 0.8 * n
    assert (zero["success"][far] == 0).all() and (zero["time_at_goal"][far] == 0).all()
    np.testing.assert_allclose(zero["final_distance"], start_distance, rtol=1e-6)  # never moved
    assert (zero["time_at_goal"][~far] == 1).all()  # started (and stayed) at the goal


def test_batched_wrapper_equals_vmapped_per_env_wrapper():
    maze = PointMaze("u4")
    per_env, batched = EpisodeWrapper(maze, 7), EpisodeWrapper(VmapWrapper(maze), 7)
    keys = jax.random.split(jax.random.PRNGKey(3), 16)
    a, b = jax.vmap(per_env.reset)(keys), batched.reset(keys)
    jax.tree.map(np.testing.assert_array_equal, a, b)
    actions = jax.random.uniform(jax.random.PRNGKey(4), (25, 16, 2), minval=-1, maxval=1)
    (_, sa), (_, sb) = _roll(per_env, a, actions, batched=False), _roll(batched, b, actions, batched=True)
    jax.tree.map(np.testing.assert_array_equal, sa, sb)
    assert batched.spec == per_env.spec


def test_unsynchronised_batch_resets_each_env_on_its_own_schedule():
    maze = PointMaze("u")
    env = EpisodeWrapper(VmapWrapper(maze), LENGTH)
    state = env.reset(jax.random.split(jax.random.PRNGKey(0), 3))
    state = state.replace(info={**state.info, "episode_step": jnp.array([0, 2, 4], jnp.int32)})
    _, states = _roll(env, state, jnp.zeros((6, 3, 2)), batched=True)
    np.testing.assert_array_equal(states.info["episode_step"][:, 0], [1, 2, 3, 4, 0, 1])
    np.testing.assert_array_equal(states.info["episode_step"][:, 1], [3, 4, 0, 1, 2, 3])
    np.testing.assert_array_equal(states.info["episode_step"][:, 2], [0, 1, 2, 3, 4, 0])


def test_reset_is_deterministic_and_typed_keys_work():
    env = EpisodeWrapper(VmapWrapper(PointMaze("big")), LENGTH)
    raw = jax.random.split(jax.random.PRNGKey(5), 8)
    np.testing.assert_array_equal(env.reset(raw).obs, env.reset(raw).obs)
    typed = jax.random.split(jax.random.key(5), 8)
    state = env.reset(typed)
    state = jax.jit(env.step)(state, jnp.zeros((8, 2)))
    assert state.obs.shape == (8, 6)


def test_unwrapped_and_vmap_spec():
    maze = PointMaze("u")
    env = EpisodeWrapper(VmapWrapper(maze), 9)
    assert unwrapped(env) is maze
    assert env.spec.episode_length == 9 and VmapWrapper(maze).spec == maze.spec
    hash(env)


@pytest.mark.parametrize("batched", [False, True])
def test_jit_and_vmap_shapes_and_dtypes(batched):
    maze = PointMaze("hardest")
    env = EpisodeWrapper(VmapWrapper(maze), 3) if batched else EpisodeWrapper(maze, 3)
    reset = env.reset if batched else jax.vmap(env.reset)
    step = env.step if batched else jax.vmap(env.step)
    state = jax.jit(reset)(jax.random.split(jax.random.PRNGKey(0), 4))
    state = jax.jit(step)(state, jnp.ones((4, 2)))
    assert state.obs.shape == (4, 6) and state.obs.dtype == jnp.float32
    assert state.done.shape == (4,) and state.reward.shape == (4,)
    assert state.info["episode_step"].dtype == jnp.int32
    assert set(state.info["episode_metrics"]) == {"success", "time_at_goal", "final_distance", "steps_at_goal",
                                                  "episode_length"}
    assert set(state.info) >= {"distance", "at_goal", "episode_step", "truncated", "episode_running"}


def test_early_termination_ends_the_episode_with_its_own_metrics():
    """A point mass started on its goal with --early-termination (terminate at goal) ends its episode on the
    first step: done, not truncated, length 1, one step at goal; time at goal counts out of the time limit.
    Without it the same episode runs to the limit with every step at goal."""
    maze = PointMaze("#####/#B..#/#####", reset_noise=0.0, goal_noise=0.0)  # start = goal cell centre
    for terminate, length, steps_done in ((True, 1, [1, 1, 1]), (False, LENGTH, [0, 0, 0])):
        env = EpisodeWrapper(PointMaze(maze.layout, reset_noise=0.0, goal_noise=0.0, terminate_at_goal=terminate),
                             LENGTH)
        state = env.reset(jax.random.PRNGKey(0))
        step = jax.jit(env.step)
        dones = []
        for _ in range(3):
            state = step(state, jnp.zeros(2))
            dones.append(int(state.done))
        assert dones == steps_done
        if terminate:
            metrics = state.info["episode_metrics"]
            assert float(state.info["truncated"]) == 0.0 and int(state.info["episode_step"]) == 0
            assert float(metrics["episode_length"]) == length and float(metrics["steps_at_goal"]) == 1.0
            assert float(metrics["time_at_goal"]) == pytest.approx(1 / LENGTH) and float(metrics["success"]) == 1.0


def test_time_limit_metrics_count_steps_at_goal_and_length():
    env = EpisodeWrapper(PointMaze("open"), LENGTH)
    n = 32
    state = jax.vmap(env.reset)(jax.random.split(jax.random.PRNGKey(3), n))
    actions = jax.random.uniform(jax.random.PRNGKey(4), (LENGTH, n, 2), minval=-1, maxval=1)
    _, states = _roll(env, state, actions, batched=False)
    metrics = jax.tree.map(lambda m: np.asarray(m[-1]), states.info["episode_metrics"])
    np.testing.assert_array_equal(metrics["steps_at_goal"], np.asarray(states.info["at_goal"]).sum(0))
    np.testing.assert_array_equal(metrics["episode_length"], LENGTH)
    np.testing.assert_array_equal(np.asarray(states.info["truncated"][-1]), 1.0)


@pytest.mark.parametrize("resample", [True, False])
def test_goal_resample_draws_new_starts_and_goals_or_repeats_the_first(resample):
    """resample=False (--goal-resample never): every episode of an env restarts from its first state, start
    noise and goal included, as brax 0.10's auto-reset restores the first state; resample=True draws anew."""
    env = EpisodeWrapper(PointMaze("big"), LENGTH, resample=resample)
    n = 16
    state = jax.vmap(env.reset)(jax.random.split(jax.random.PRNGKey(5), n))
    first_obs = np.asarray(state.obs)
    actions = jax.random.uniform(jax.random.PRNGKey(6), (4 * LENGTH, n, 2), minval=-1, maxval=1)
    _, states = _roll(env, state, actions, batched=False)
    starts = np.asarray(states.obs).reshape(4, LENGTH, n, 6)[:, -1]  # the obs after each auto-reset
    goals_differ = [not np.array_equal(starts[i][:, 4:], first_obs[:, 4:]) for i in range(4)]
    if resample:
        assert all(goals_differ)  # 16 envs over 23 goal cells: some goal changes every episode
        assert (np.abs(starts[:, :, :2] - first_obs[None, :, :2]) > 1e-6).any(-1).all()  # new start noise
    else:
        for i in range(4):
            np.testing.assert_array_equal(starts[i], first_obs)
    assert len({tuple(g) for g in first_obs[:, 4:].round(3)}) > 1  # the envs themselves got different goals
