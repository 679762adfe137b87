"""CRL (agents/crl.py), one update at a time: the critic's logits against a hand computation, the InfoNCE loss
falls on the batch it stepped on, α moves against the entropy error, shapes and metrics."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from one_update import GOAL_SPEC, NET, alpha_step_sign, goal_batch, init_and_update

from depthrl.agents.crl import CRL, CRLConfig


def _agent(**kw) -> CRL:
    config = CRLConfig(**NET, repr_dim=4, batch_size=8, critic_lr=1e-3, alpha_lr=1e-3, **kw)
    config.validate()
    return CRL(config, GOAL_SPEC)


@functools.cache
def _two_updates():
    """(initial state, [state after 1, after 2], [metrics of update 1, 2]): one compile for the tests below."""
    return init_and_update(_agent(), goal_batch(), steps=2)


@pytest.mark.parametrize("energy", ["l2", "dot"])
def test_logits_are_the_energy_of_every_pair_and_the_diagonal_is_q(energy):
    agent, batch = _agent(energy=energy), goal_batch()
    params = jax.jit(agent.init)(jax.random.PRNGKey(0)).params
    sa = jnp.concatenate([batch["state"], batch["action"]], -1)
    logits, phi, psi = jax.jit(agent.critic_logits)(params.sa_encoder, params.g_encoder, sa, batch["goal"])
    phi64, psi64 = np.asarray(phi, np.float64), np.asarray(psi, np.float64)
    if energy == "l2":  # f = −‖φ_i − ψ_j‖
        expected = -np.sqrt(np.sum((phi64[:, None] - psi64[None]) ** 2, -1))
    else:  # f = φ_i · ψ_j
        expected = phi64 @ psi64.T
    assert logits.shape == (8, 8) and phi.shape == psi.shape == (8, 4)
    np.testing.assert_allclose(np.asarray(logits), expected, rtol=1e-5, atol=1e-5)
    q = jax.jit(agent.q_value)(params, batch["state"], batch["action"], batch["goal"])
    np.testing.assert_allclose(np.asarray(q), np.diagonal(np.asarray(logits)), rtol=1e-6, atol=1e-6)


def test_one_update_lowers_the_critic_loss_and_moves_alpha_against_the_entropy_error():
    state, (after, _), (m1, m2) = _two_updates()
    assert float(m2["critic/loss"]) < float(m1["critic/loss"])  # the second update measures the stepped critic
    target = -0.5 * GOAL_SPEC.action_dim
    step = float(after.params.log_alpha - state.params.log_alpha)
    assert step == pytest.approx(alpha_step_sign(float(m1["actor/entropy"]), target) * 1e-3, rel=1e-3)
    assert float(m1["alpha/value"]) == pytest.approx(1.0)  # α = exp(0) before the first step


def test_update_keeps_shapes_counts_steps_and_reports_finite_scalar_metrics():
    state, (after, _), (metrics, _) = _two_updates()
    assert jax.tree.structure(after) == jax.tree.structure(state)
    for old, new in zip(jax.tree.leaves(state), jax.tree.leaves(after), strict=True):
        assert old.shape == new.shape and old.dtype == new.dtype
    assert int(after.sgd_steps) == 1
    for name in ("critic/loss", "actor/loss", "alpha/loss", "alpha/value", "actor/entropy", "actor/q",
                 "critic/grad_norm", "actor/grad_norm", "critic/accuracy", "critic/logits_pos", "critic/logits_neg",
                 "critic/logsumexp", "critic/phi_norm", "critic/psi_norm"):
        assert metrics[name].shape == () and np.isfinite(float(metrics[name])), name
    # every network moved
    for name in ("actor", "sa_encoder", "g_encoder"):
        moved = jax.tree.map(lambda a, b: bool(jnp.any(a != b)), getattr(state.params, name),
                             getattr(after.params, name))
        assert all(jax.tree.leaves(moved)), name
