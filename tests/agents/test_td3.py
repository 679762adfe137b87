"""TD3 (agents/td3.py), one update at a time: on terminal transitions one step lowers the critic loss; on a
policy step the actor raises the stepped critic's Q1 and both targets move by τ."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from one_update import GOAL_SPEC, NET, goal_batch, init_and_update

from depthrl.agents import critics
from depthrl.agents.td3 import TD3, TD3Config

TAU, LR = 0.1, 1e-3


@functools.cache
def _two_updates():
    config = TD3Config(**NET, batch_size=8, tau=TAU, critic_lr=LR, actor_lr=LR)
    config.validate()
    agent = TD3(config, GOAL_SPEC)
    batch = goal_batch(terminal=True)
    return agent, batch, init_and_update(agent, batch, steps=2)


def test_terminal_td_target_is_the_reward_and_one_step_lowers_the_critic_loss():
    _, batch, (_, _, (m1, m2)) = _two_updates()
    assert float(m1["critic/td_target"]) == pytest.approx(float(jnp.mean(batch["reward"])), rel=1e-6)
    assert float(m2["critic/loss"]) < float(m1["critic/loss"])


def test_policy_step_raises_q1_of_the_stepped_critic():
    agent, batch, (state, (after, _), (m1, _)) = _two_updates()
    assert float(m1["actor/updated"]) == 1.0  # step 0 is a policy step (0 % policy_delay == 0)
    obs = critics.actor_input(batch["state"], batch["goal"])

    def mean_q1(actor_params):
        action = agent.actor_net.apply(actor_params, obs)
        return float(jnp.mean(agent.critic.q(after.params.critic,
                                             critics.critic_input(batch["state"], action, batch["goal"]))[0]))

    assert mean_q1(after.params.actor) > mean_q1(state.params.actor)


def test_targets_move_by_tau_on_a_policy_step_and_stay_on_the_next():
    _, _, (state, (after, again), _) = _two_updates()
    for target, online, old in ((after.target_actor, after.params.actor, state.target_actor),
                                (after.target_critic, after.params.critic, state.target_critic)):
        expected = jax.tree.map(lambda t, o: (1 - TAU) * t + TAU * o, old, online)
        for got, want in zip(jax.tree.leaves(target), jax.tree.leaves(expected), strict=True):
            np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-6, atol=1e-7)
    # step 1 is not a policy step: actor and targets keep their values, the critic moves
    for a, b in zip(jax.tree.leaves((after.params.actor, after.target_actor, after.target_critic)),
                    jax.tree.leaves((again.params.actor, again.target_actor, again.target_critic)), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert any(bool(jnp.any(a != b)) for a, b in zip(jax.tree.leaves(after.params.critic),
                                                     jax.tree.leaves(again.params.critic), strict=True))
