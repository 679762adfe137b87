"""DQN (agents/dqn.py), one update at a time: the TD target against a hand computation, one step lowers the loss
on its batch, and the target network is copied every --target-update-period steps."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from one_update import DISCRETE_SPEC, NET, discrete_batch, init_and_update

from depthrl.agents.dqn import DQN, DQNConfig

GAMMA = 0.9


@functools.cache
def _two_updates():
    config = DQNConfig(**NET, batch_size=8, critic_loss="mse", double_q=False, discount=GAMMA, lr=1e-3,
                       target_update_period=2)
    config.validate()
    agent = DQN(config, DISCRETE_SPEC)
    batch = discrete_batch()
    return agent, batch, init_and_update(agent, batch, steps=2)


def test_td_target_is_reward_plus_discounted_max_target_q():
    agent, batch, (state, _, (m1, _)) = _two_updates()
    next_q = np.asarray(agent.q_values(state.params.target, batch["next_obs"]), np.float64)  # [B, 3]
    y = np.asarray(batch["reward"]) + GAMMA * (1 - np.asarray(batch["terminated"])) * next_q.max(-1)
    q = np.asarray(agent.q_values(state.params.online, batch["obs"]), np.float64)
    q_taken = q[np.arange(len(y)), np.asarray(batch["action"])]
    assert float(m1["critic/td_target"]) == pytest.approx(y.mean(), rel=1e-5)
    assert float(m1["critic/loss"]) == pytest.approx(np.mean(0.5 * (q_taken - y) ** 2), rel=1e-5)


def test_one_step_lowers_the_loss_and_the_target_is_copied_every_period():
    _, _, (state, (after, again), (m1, m2)) = _two_updates()
    assert float(m2["critic/loss"]) < float(m1["critic/loss"])  # same target network in both (period 2)
    for init, first in zip(jax.tree.leaves(state.params.target), jax.tree.leaves(after.params.target), strict=True):
        np.testing.assert_array_equal(np.asarray(init), np.asarray(first))
    for online, target in zip(jax.tree.leaves(again.params.online), jax.tree.leaves(again.params.target),
                              strict=True):
        np.testing.assert_array_equal(np.asarray(online), np.asarray(target))
    assert any(bool(jnp.any(a != b)) for a, b in zip(jax.tree.leaves(state.params.online),
                                                     jax.tree.leaves(after.params.online), strict=True))
