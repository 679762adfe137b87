"""PPO (agents/ppo.py), one update at a time: at the behaviour policy the ratio is 1 (no KL, nothing clipped,
surrogate −mean of the normalised advantages = 0), the small head starts near uniform, and one step lowers the
minibatch loss."""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import pytest
from one_update import DISCRETE_SPEC, NET, discrete_batch, init_and_update

from depthrl.agents.ppo import PPO, PPOConfig


@functools.cache
def _two_updates():
    config = PPOConfig(**NET, batch_size=8, critic_loss="mse", lr=1e-3)
    config.validate()
    agent = PPO(config, DISCRETE_SPEC)
    data = discrete_batch()
    init = jax.jit(agent.init)(jax.random.PRNGKey(0))
    batch = {"obs": data["obs"], "action": data["action"],
             "log_prob": agent.log_prob(init.params, data["obs"], data["action"]),
             "advantage": jnp.linspace(-1.0, 2.0, 8), "target": data["reward"] * 3.0}
    return init_and_update(agent, batch, steps=2)


def test_at_the_behaviour_policy_the_ratio_is_one():
    _, _, (m1, _) = _two_updates()
    assert float(m1["actor/approx_kl"]) == pytest.approx(0.0, abs=1e-6)
    assert float(m1["actor/clip_fraction"]) == 0.0
    assert float(m1["actor/loss"]) == pytest.approx(0.0, abs=1e-5)  # −mean(normalised advantages)
    assert float(m1["actor/entropy"]) == pytest.approx(math.log(3), abs=1e-3)  # near-uniform first policy


def test_one_step_lowers_the_minibatch_loss_and_counts_it():
    state, (after, _), (m1, m2) = _two_updates()
    assert float(m2["loss"]) < float(m1["loss"])
    assert int(after.sgd_steps) == 1 and jax.tree.structure(after) == jax.tree.structure(state)
