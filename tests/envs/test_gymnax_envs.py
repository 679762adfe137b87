"""gymnax adapter and the reward-driven envs of the registry: dims, termination vs truncation, final_obs,
episode return/length, config errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from depthrl.envs import episodic
from depthrl.envs.gymnax_envs import GYMNAX_ENVS, GymnaxEnv
from depthrl.envs.registry import EnvConfig, batched_envs, make_envs
from depthrl.errors import ConfigError


@pytest.mark.parametrize("name", list(GYMNAX_ENVS))
def test_table_matches_gymnax(name):
    import gymnax

    entry = GYMNAX_ENVS[name]
    env, params = gymnax.make(entry.gymnax_id)
    assert int(np.prod(env.observation_space(params).shape)) == entry.obs_dim
    assert env.num_actions == entry.num_actions and params.max_steps_in_episode == entry.episode_length
    spec = GymnaxEnv(name).spec
    assert spec.discrete_actions == entry.num_actions and spec.obs_dim == entry.obs_dim and spec.goal_indices == ()


def _rollout(env, action, steps, num_envs=3, seed=0):
    state = jax.vmap(env.reset)(jax.random.split(jax.random.PRNGKey(seed), num_envs))

    def one(s, _):
        s = jax.vmap(env.step)(s, jnp.full((num_envs,), action, jnp.int32))
        return s, s

    return jax.jit(lambda s: jax.lax.scan(one, s, None, length=steps))(state)


def test_cartpole_truncation_bootstraps_from_final_obs():
    env, _ = make_envs(EnvConfig(env="cartpole", episode_length=5))
    assert env.spec.episode_length == 5
    state = jax.vmap(env.reset)(jax.random.split(jax.random.PRNGKey(0), 3))
    # alternate pushes keep the pole up, so every episode ends by the 5-step limit
    for t in range(5):
        previous = state
        state = jax.vmap(env.step)(state, jnp.full((3,), t % 2, jnp.int32))
    np.testing.assert_array_equal(state.done, 1.0)
    np.testing.assert_array_equal(state.info["truncated"], 1.0)
    np.testing.assert_array_equal(state.info["terminated"], 0.0)
    np.testing.assert_array_equal(state.info["episode_metrics"]["return"], 5.0)
    np.testing.assert_array_equal(state.info["episode_metrics"]["length"], 5.0)
    # final_obs continues the dynamics of the last step; obs is a fresh reset (cart near the centre)
    assert not np.allclose(state.info["final_obs"], state.obs)
    assert np.all(np.abs(state.obs) <= 0.05)
    assert np.all(np.abs(state.info["final_obs"] - previous.obs) < 0.5)


def test_cartpole_termination_and_episode_metrics():
    env, _ = make_envs(EnvConfig(env="cartpole"))
    _, states = _rollout(env, 0, 40)  # always push left: the pole falls in ~10 steps
    done = np.asarray(states.done)
    assert done.sum() >= 3
    np.testing.assert_array_equal(states.info["terminated"], done)  # every end here is a fall
    np.testing.assert_array_equal(states.info["truncated"], 0.0)
    t, e = np.nonzero(done)
    first = {}
    for ti, ei in zip(t, e, strict=True):
        first.setdefault(ei, ti)
    for ei, ti in first.items():  # the first episode's return = its length = steps up to the fall
        assert states.info["episode_metrics"]["length"][ti, ei] == ti + 1
        assert states.info["episode_metrics"]["return"][ti, ei] == ti + 1
        assert states.info["episode_running"]["length"][ti, ei] == 0.0


def test_batched_envs_equal_vmapped_envs():
    env, _ = make_envs(EnvConfig(env="minatar-breakout", episode_length=4))
    batched, _ = batched_envs(EnvConfig(env="minatar-breakout", episode_length=4))
    keys = jax.random.split(jax.random.PRNGKey(3), 2)
    a, b = jax.vmap(env.reset)(keys), batched.reset(keys)
    for t in range(6):  # through a time-limit reset
        actions = jnp.array([t % 3, (t + 1) % 3], jnp.int32)
        a, b = jax.vmap(env.step)(a, actions), batched.step(b, actions)
    assert a.obs.shape == (2, 400) and float(a.info["episode_metrics"]["length"][0]) == 4.0
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_array_equal(x, y)


def test_probe_in_the_registry_reports_returns():
    env, _ = make_envs(EnvConfig(env="probe-two-step"))
    _, states = _rollout(env, 0, 6)
    np.testing.assert_array_equal(states.done[:, 0], [0, 1, 0, 1, 0, 1])
    np.testing.assert_array_equal(states.info["terminated"][:, 0], [0, 1, 0, 1, 0, 1])
    np.testing.assert_array_equal(states.info["episode_metrics"]["return"][1::2], 1.0)
    np.testing.assert_array_equal(states.info["episode_metrics"]["length"][1::2], 2.0)


def test_list_envs_rows():
    rows = {r[0]: r for r in episodic.list_envs()}
    assert rows["cartpole"][1:3] == (4, 2) and rows["minatar-breakout"][1:3] == (400, 3)
    assert rows["probe-action-dependent"][1:3] == (1, 2)


@pytest.mark.parametrize(
    "cfg, flag",
    [
        (EnvConfig(env="cartpole", layout="u"), "--layout"),
        (EnvConfig(env="cartpole", random_start=True), "--random-start"),
        (EnvConfig(env="cartpole", stitching=True), "--stitching"),
        (EnvConfig(env="cartpole", stitch_pairs="forward"), "--stitch-pairs"),
        (EnvConfig(env="minatar-breakout", success_radius=0.2), "--success-radius"),
        (EnvConfig(env="cartpole", episode_length=0), "--episode-length"),
        (EnvConfig(env="probe-one-step", episode_length=3), "--episode-length"),
        (EnvConfig(env="cartpol"), "--env"),
    ],
)
def test_config_errors_name_the_flag(cfg, flag):
    with pytest.raises(ConfigError) as err:
        cfg.validate()
    assert err.value.flag == flag


def test_env_first_built_inside_a_jit_trace_works_outside_it():
    """The cached gymnax env may be built during a jit trace (an agent's init); its constants must not be tracers."""
    from depthrl.envs import gymnax_envs

    gymnax_envs._gymnax_env.cache_clear()
    env, _ = make_envs(EnvConfig(env="minatar-breakout", episode_length=4))
    jax.jit(env.reset)(jax.random.PRNGKey(0))  # builds and caches the gymnax env while tracing
    state = jax.vmap(env.reset)(jax.random.split(jax.random.PRNGKey(1), 2))
    state = jax.vmap(env.step)(state, jnp.array([0, 1], jnp.int32))
    assert state.obs.shape == (2, 400)
