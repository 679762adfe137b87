"""SAC (agents/sac.py), one update at a time: on terminal transitions the TD target is the reward and one step
lowers the critic loss; the target critics move by τ; α moves against the entropy error; shapes."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from one_update import GOAL_SPEC, NET, alpha_step_sign, goal_batch, init_and_update

from depthrl.agents.sac import SAC, SACConfig

TAU, LR = 0.1, 1e-3


@functools.cache
def _two_updates():
    config = SACConfig(**NET, batch_size=8, tau=TAU, critic_lr=LR, actor_lr=LR, alpha_lr=LR)
    config.validate()
    batch = goal_batch(terminal=True)
    return batch, init_and_update(SAC(config, GOAL_SPEC), batch, steps=2)


def test_terminal_td_target_is_the_reward_and_one_step_lowers_the_critic_loss():
    batch, (_, _, (m1, m2)) = _two_updates()
    assert float(m1["critic/td_target"]) == pytest.approx(float(jnp.mean(batch["reward"])), rel=1e-6)
    assert float(m2["critic/loss"]) < float(m1["critic/loss"])


def test_target_critics_move_by_tau_towards_the_stepped_critics():
    _, (state, (after, _), _) = _two_updates()
    expected = jax.tree.map(lambda t, c: (1 - TAU) * t + TAU * c, state.target_critic, after.params.critic)
    for got, want in zip(jax.tree.leaves(after.target_critic), jax.tree.leaves(expected), strict=True):
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-6, atol=1e-7)
    assert not all(bool(jnp.all(a == b)) for a, b in zip(jax.tree.leaves(after.target_critic),
                                                         jax.tree.leaves(state.target_critic), strict=True))


def test_alpha_moves_against_the_entropy_error_and_shapes_are_kept():
    _, (state, (after, _), (m1, _)) = _two_updates()
    target = -1.0 * GOAL_SPEC.action_dim  # SAC's default --target-entropy-scale −1
    step = float(after.params.log_alpha - state.params.log_alpha)
    assert step == pytest.approx(alpha_step_sign(float(m1["actor/entropy"]), target) * LR, rel=1e-3)
    assert jax.tree.structure(after) == jax.tree.structure(state) and int(after.sgd_steps) == 1
    for old, new in zip(jax.tree.leaves(state), jax.tree.leaves(after), strict=True):
        assert old.shape == new.shape
    twin = jax.tree.leaves(after.params.critic)[0]
    assert twin.shape[0] == 2  # twin critics share one tree with a leading axis of 2
