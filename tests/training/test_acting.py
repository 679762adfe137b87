"""`training.acting` (the rollout and evaluation of every loop) and the replays of `buffers.replay`, on the
two-step probe: every episode is 2 steps long and returns 1, whatever the actions."""

import jax
import jax.numpy as jnp
import numpy as np

from depthrl.buffers.replay import TransitionReplay
from depthrl.envs.episodic import EpisodeReturnWrapper
from depthrl.envs.probes import TwoStepChain
from depthrl.training import acting

ENV = EpisodeReturnWrapper(TwoStepChain())
NUM_ENVS, STEPS = 3, 6


def _rollout(record):
    state = acting.reset_envs(ENV, jax.random.PRNGKey(0), NUM_ENVS)
    policy = lambda obs, key: acting.uniform_actions(ENV.spec, key, obs.shape[0])  # noqa: E731
    return jax.jit(lambda s, k: acting.rollout(ENV, policy, record, s, k, STEPS))(state, jax.random.PRNGKey(1))


def test_rollout_records_every_step_of_every_env_and_the_episodes_that_ended():
    record = lambda state, action, next_state: {"obs": state.obs, "action": action, "done": next_state.done}  # noqa: E731
    env_state, steps, metrics = _rollout(record)
    assert steps["obs"].shape == (STEPS, NUM_ENVS, ENV.spec.obs_dim) and steps["action"].shape == (STEPS, NUM_ENVS)
    np.testing.assert_array_equal(steps["done"], np.tile([[0.0], [1.0]], (STEPS // 2, NUM_ENVS)))
    # the recorded obs is the one acted on: the chain's two states alternate, starting from reset
    np.testing.assert_array_equal(steps["obs"][2:], steps["obs"][:-2])
    assert not np.array_equal(steps["obs"][0], steps["obs"][1])
    assert float(metrics["train/episodes"]) == NUM_ENVS * STEPS // 2
    assert float(metrics["train/return"]) == 1.0 and float(metrics["train/length"]) == 2.0
    np.testing.assert_array_equal(env_state.obs, steps["obs"][0])  # back at an episode's first observation


def test_transition_replay_stores_the_unroll_flat_and_samples_from_it():
    replay = TransitionReplay.of(ENV.spec, capacity=NUM_ENVS * STEPS, batch_size=5)
    _, steps, _ = _rollout(replay.record)
    buffer = jax.jit(lambda steps: replay.add(replay.init(), steps))(steps)
    assert int(buffer.size) == NUM_ENVS * STEPS
    for name, values in steps.items():  # row t·N + e holds step t of env e
        np.testing.assert_array_equal(buffer.data[name], np.reshape(values, (NUM_ENVS * STEPS,) + values.shape[2:]))
    np.testing.assert_array_equal(steps["terminated"], steps["reward"])  # the chain's reward 1 ends the episode
    batch = jax.jit(replay.sample)(buffer, jax.random.PRNGKey(2))
    rows = {tuple(np.concatenate([np.ravel(buffer.data[k][i]) for k in sorted(steps)]))
            for i in range(NUM_ENVS * STEPS)}
    for i in range(5):
        assert tuple(np.concatenate([np.ravel(batch[k][i]) for k in sorted(steps)])) in rows


def test_evaluate_reports_each_envs_first_episode():
    always_zero = lambda params, obs, key, deterministic: jnp.zeros(obs.shape[:1], jnp.int32)  # noqa: E731
    metrics, trace, reset = acting.evaluate(ENV, always_zero, None, jax.random.PRNGKey(0), 4,
                                            trace=lambda state: state.obs)
    np.testing.assert_array_equal(metrics["return"], np.ones(4))
    np.testing.assert_array_equal(metrics["length"], np.full(4, 2.0))
    assert trace.shape == (ENV.spec.episode_length, 4, ENV.spec.obs_dim)
    np.testing.assert_array_equal(trace[0], reset.obs)
