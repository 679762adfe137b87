"""Tests for depthrl.envs.probes: rewards, dones, auto-reset, jit + vmap, determinism, known values."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from depthrl.envs.base import EnvSpec, State
from depthrl.envs.probes import (
    PROBE_ENVS,
    ActionDependentReward,
    ObsDependentReward,
    OneStepReward,
    TwoStepChain,
)
from depthrl.errors import ConfigError

GAMMA = 0.9
ALL_ENVS = [
    OneStepReward(),
    OneStepReward(continuous=True),
    TwoStepChain(GAMMA),
    TwoStepChain(GAMMA, continuous=True),
    ActionDependentReward(),
    ActionDependentReward(continuous=True),
    ObsDependentReward(),
    ObsDependentReward(continuous=True),
]
IDS = [env.spec.name for env in ALL_ENVS]


def _action(env, value):
    return jnp.full((1,), value, jnp.float32) if env.continuous else jnp.asarray(value, jnp.int32)


def _rollout(env, key, actions):
    """Scan `step` over a [T, ...] array of actions from reset(key); returns (first state, states [T])."""
    first = env.reset(key)

    def body(state, action):
        state = env.step(state, action)
        return state, state

    return first, jax.lax.scan(body, first, actions)[1]


@pytest.mark.parametrize("env", ALL_ENVS, ids=IDS)
def test_spec_and_shapes(env):
    spec = env.spec
    assert isinstance(spec, EnvSpec)
    assert spec.discrete_actions == (0 if env.continuous else 2)
    assert spec.goal_indices == () and spec.state_dim == spec.obs_dim
    state = env.reset(jax.random.key(0))
    assert isinstance(state, State)
    assert state.obs.shape == (spec.obs_dim,) and state.obs.dtype == jnp.float32
    assert state.reward.shape == () and state.done.shape == ()
    assert state.info["episode_step"].dtype == jnp.int32
    assert state.info["truncated"].dtype == jnp.float32
    # step keeps the pytree structure, shapes and dtypes, so it can be scanned.
    stepped = env.step(state, _action(env, 0))
    assert jax.tree.structure(stepped) == jax.tree.structure(state)
    for before, after in zip(jax.tree.leaves(state), jax.tree.leaves(stepped), strict=True):
        assert before.shape == after.shape and before.dtype == after.dtype


@pytest.mark.parametrize("env", ALL_ENVS, ids=IDS)
def test_dones_auto_reset_and_info(env):
    steps = 3 * env.spec.episode_length
    _, states = _rollout(env, jax.random.key(1), jnp.stack([_action(env, 0)] * steps))
    length = env.spec.episode_length
    expected_done = np.tile(np.eye(length)[-1], 3)  # done on the last step of each episode, forever
    np.testing.assert_array_equal(states.done, expected_done)
    # episode_step indexes the obs within its episode: back to 0 on done steps (obs already reset).
    np.testing.assert_array_equal(states.info["episode_step"], np.tile(np.arange(1, length + 1) % length, 3))
    np.testing.assert_array_equal(states.physics.step, states.info["episode_step"])
    np.testing.assert_array_equal(states.info["truncated"], 0.0)  # probes terminate, never truncate
    # The obs after each done step is the first observation of a fresh episode.
    first_obs = env.reset(jax.random.key(2)).obs
    if not isinstance(env, ObsDependentReward):  # its first obs is random: checked in its own test
        np.testing.assert_array_equal(states.obs[length - 1 :: length], np.stack([first_obs] * 3))


def test_one_step_reward():
    env = OneStepReward()
    _, states = _rollout(env, jax.random.key(0), jnp.array([0, 1, 0], jnp.int32))
    np.testing.assert_array_equal(states.reward, 1.0)
    np.testing.assert_array_equal(states.obs, 1.0)


def test_two_step_chain_rewards_and_obs():
    env = TwoStepChain(GAMMA)
    first, states = _rollout(env, jax.random.key(0), jnp.zeros(4, jnp.int32))
    np.testing.assert_array_equal(first.obs, [1.0, 0.0])
    np.testing.assert_array_equal(states.reward, [0.0, 1.0, 0.0, 1.0])
    # s0 -> s1 -> (done, auto-reset to s0) -> s1 -> (done, s0)
    np.testing.assert_array_equal(states.obs, [[0, 1], [1, 0], [0, 1], [1, 0]])


def test_action_dependent_reward_discrete():
    env = ActionDependentReward()
    _, states = _rollout(env, jax.random.key(0), jnp.array([0, 1, 1, 0], jnp.int32))
    np.testing.assert_array_equal(states.reward, [1.0, -1.0, -1.0, 1.0])
    np.testing.assert_array_equal(states.done, 1.0)
    # An action of shape [1] is accepted too.
    assert float(env.step(env.reset(jax.random.key(0)), jnp.array([1])).reward) == -1.0


def test_action_dependent_reward_continuous():
    env = ActionDependentReward(continuous=True)
    actions = jnp.array([[0.5], [-1.0], [1.0], [0.0], [3.0]], jnp.float32)
    _, states = _rollout(env, jax.random.key(0), actions)
    # −(a − 0.5)², the action clipped to [−1, 1] first (3.0 acts as 1.0).
    np.testing.assert_allclose(states.reward, [0.0, -2.25, -0.25, -0.25, -0.25])


def test_obs_dependent_reward_equals_obs_and_both_signs_occur():
    env = ObsDependentReward()
    first, states = _rollout(env, jax.random.key(0), jnp.zeros(200, jnp.int32))
    obs_before = np.concatenate([np.asarray(first.obs)[None], np.asarray(states.obs)[:-1]])
    np.testing.assert_array_equal(states.reward, obs_before[:, 0])  # reward = obs the agent saw
    assert set(np.unique(obs_before)) == {-1.0, 1.0}
    assert 0.35 < np.mean(obs_before == 1.0) < 0.65  # fresh randomness at every auto-reset


@pytest.mark.parametrize("env", [TwoStepChain(GAMMA), ObsDependentReward()], ids=["two_step", "obs_dep"])
def test_jit_vmap_matches_single_env(env):
    keys = jax.random.split(jax.random.key(3), 5)
    actions = jnp.zeros((5,), jnp.int32)
    batched = jax.jit(jax.vmap(env.step))(jax.jit(jax.vmap(env.reset))(keys), actions)
    assert batched.obs.shape == (5, env.spec.obs_dim) and batched.done.shape == (5,)
    for i in range(5):
        single = env.step(env.reset(keys[i]), actions[i])
        np.testing.assert_array_equal(batched.obs[i], single.obs)
        np.testing.assert_array_equal(batched.reward[i], single.reward)


def test_determinism_and_key_discipline():
    env = ObsDependentReward()
    actions = jnp.zeros(20, jnp.int32)
    run = jax.jit(lambda key: _rollout(env, key, actions))
    _, a = run(jax.random.key(7))
    _, b = run(jax.random.key(7))
    _, c = run(jax.random.key(8))
    np.testing.assert_array_equal(a.obs, b.obs)
    assert not np.array_equal(a.obs, c.obs)
    # The carried key changes on every step: no key is used twice.
    key_data = np.asarray(jax.random.key_data(a.physics.key)).reshape(20, -1)
    assert len({tuple(row) for row in key_data}) == 20


def _discounted_returns(rewards, dones, gamma):
    """Return from each step to the end of its episode (terminations never bootstrap)."""
    returns, future = np.zeros_like(rewards), 0.0
    for t in reversed(range(len(rewards))):
        future = rewards[t] + gamma * (1.0 - dones[t]) * future
        returns[t] = future
    return returns


@pytest.mark.parametrize("env", ALL_ENVS, ids=IDS)
def test_known_values_match_a_hand_rollout(env):
    # Acting optimally, the return from every visited state equals known_v(obs) and known_q(obs, a).
    first = env.reset(jax.random.key(11))
    state, observations, actions, rewards, dones = first, [], [], [], []
    for _ in range(4 * env.spec.episode_length):
        action = env.optimal_action(state.obs)
        observations.append(state.obs)
        actions.append(action)
        state = env.step(state, action)
        rewards.append(float(state.reward))
        dones.append(float(state.done))
    returns = _discounted_returns(np.array(rewards), np.array(dones), GAMMA)
    for obs, action, ret in zip(observations, actions, returns, strict=True):
        assert float(env.known_v(obs)) == pytest.approx(ret, abs=1e-6)
        assert float(env.known_q(obs, action)) == pytest.approx(ret, abs=1e-6)
    assert dones[-1] == 1.0  # the rollout ends on an episode boundary: no return was cut short


def test_known_values_by_hand():
    chain = TwoStepChain(GAMMA)
    assert float(chain.known_v(jnp.array([1.0, 0.0]))) == pytest.approx(GAMMA)
    assert float(chain.known_v(jnp.array([0.0, 1.0]))) == pytest.approx(1.0)
    discrete = ActionDependentReward()
    assert float(discrete.known_q(jnp.ones(1), jnp.int32(0))) == 1.0
    assert float(discrete.known_q(jnp.ones(1), jnp.int32(1))) == -1.0
    assert float(discrete.known_v(jnp.ones(1))) == 1.0
    continuous = ActionDependentReward(continuous=True)
    assert float(continuous.known_q(jnp.ones(1), jnp.array([0.0]))) == pytest.approx(-0.25)
    assert float(continuous.known_v(jnp.ones(1))) == 0.0
    obs_dep = ObsDependentReward()
    assert float(obs_dep.known_v(jnp.array([-1.0]))) == -1.0
    assert float(obs_dep.known_v(jnp.array([1.0]))) == 1.0
    assert float(OneStepReward().known_v(jnp.ones(1))) == 1.0
    # Known values vmap over a batch of observations.
    values = jax.vmap(chain.known_v)(jnp.array([[1.0, 0.0], [0.0, 1.0]]))
    np.testing.assert_allclose(values, [GAMMA, 1.0])


def test_registry_names_match_specs():
    for name, make in PROBE_ENVS.items():
        assert make().spec.name == name
        assert make(continuous=True).spec.name == name + "_continuous"


def test_two_step_gamma_validated():
    with pytest.raises(ConfigError, match="--gamma"):
        TwoStepChain(1.5)
