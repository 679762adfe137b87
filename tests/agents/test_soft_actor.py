"""The actor + α step SAC and CRL share (agents/soft_actor.py), against a Q written by hand: the step lowers the
actor loss on its batch, α moves against the entropy error by Adam's first step, and the metrics are what they
say."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from one_update import alpha_step_sign

from depthrl.agents.soft_actor import SoftActor
from depthrl.networks.heads import GaussianPolicy, sample_tanh_gaussian
from depthrl.networks.torso import NetworkConfig

LR = 1e-3
OBS = jax.random.normal(jax.random.PRNGKey(3), (16, 3))
KEY = jax.random.PRNGKey(4)


def q_fn(action):  # Q(a) = −‖a − 0.5‖²: highest at a = (0.5, 0.5)
    return -jnp.sum(jnp.square(action - 0.5), -1)


def _actor(target_entropy: float) -> SoftActor:
    return SoftActor(GaussianPolicy(NetworkConfig(depth=4, width=16), action_dim=2), LR, LR, target_entropy)


@functools.cache
def _step(target_entropy: float):
    actor = _actor(target_entropy)
    params = actor.net.init(jax.random.PRNGKey(0), OBS[:1])
    log_alpha = jnp.asarray(np.log(0.2), jnp.float32)

    @jax.jit
    def run(params, log_alpha):
        return actor.step(params, actor.actor_optimizer.init(params), log_alpha,
                          actor.alpha_optimizer.init(log_alpha), OBS, q_fn, KEY)

    return actor, params, log_alpha, run(params, log_alpha)


def _loss_and_log_prob(actor, params, alpha):
    mean, log_std = actor.net.apply(params, OBS)
    action, log_prob = sample_tanh_gaussian(KEY, mean, log_std)
    return float(jnp.mean(alpha * log_prob - q_fn(action))), log_prob, action


@pytest.mark.parametrize("target_entropy", [-10.0, 10.0])
def test_alpha_moves_against_the_entropy_error(target_entropy):
    _, _, log_alpha, (_, _, new_log_alpha, _, metrics) = _step(target_entropy)
    expected = alpha_step_sign(float(metrics["actor/entropy"]), target_entropy) * LR
    assert float(new_log_alpha - log_alpha) == pytest.approx(expected, rel=1e-3)


def test_actor_step_lowers_its_loss_and_reports_the_loss_it_took():
    actor, params, log_alpha, (new_params, _, _, _, metrics) = _step(-10.0)
    alpha = float(jnp.exp(log_alpha))
    before, log_prob, action = _loss_and_log_prob(actor, params, alpha)
    after, _, _ = _loss_and_log_prob(actor, new_params, alpha)
    assert after < before
    assert float(metrics["actor/loss"]) == pytest.approx(before, rel=1e-5)
    assert float(metrics["alpha/value"]) == pytest.approx(0.2, rel=1e-6)
    assert float(metrics["actor/entropy"]) == pytest.approx(-float(jnp.mean(log_prob)), rel=1e-5)
    assert float(metrics["actor/q"]) == pytest.approx(float(jnp.mean(q_fn(action))), rel=1e-5)
    assert float(metrics["alpha/loss"]) == pytest.approx(
        -float(log_alpha) * (float(jnp.mean(log_prob)) - 10.0), rel=1e-5)


def test_act_is_tanh_of_the_mean_when_deterministic_and_a_sample_otherwise():
    actor, params, _, _ = _step(-10.0)
    mean, log_std = actor.net.apply(params, OBS)
    np.testing.assert_array_equal(np.asarray(actor.act(params, OBS, KEY, True)), np.asarray(jnp.tanh(mean)))
    np.testing.assert_array_equal(np.asarray(actor.act(params, OBS, KEY, False)),
                                  np.asarray(sample_tanh_gaussian(KEY, mean, log_std)[0]))
