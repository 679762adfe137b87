"""GAE and the PPO clipped surrogate against hand-computed cases."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from depthrl.losses import policy_gradient as pg


def _gae(rewards, values, next_values, dones, terminated, gamma, lam):
    args = [jnp.asarray(x, jnp.float32) for x in (rewards, values, next_values, dones, terminated)]
    return [np.asarray(x) for x in pg.gae(*args, gamma, lam)]


def test_gae_hand_case_with_termination_and_truncation():
    # 4 steps of one env: step 1 terminates (no bootstrap), step 2 starts a new episode that the time limit
    # ends at step 3 (bootstrap from V(final_obs) = next_values[3] = 5).
    r = [1.0, 2.0, 0.5, 1.0]
    v = [0.5, 1.0, 2.0, 3.0]
    nv = [1.0, 9.0, 3.0, 5.0]  # V(s'_t); step 1's s' is terminal (its value must be ignored)
    done = [0.0, 1.0, 0.0, 1.0]
    term = [0.0, 1.0, 0.0, 0.0]
    g, lam = 0.9, 0.5
    deltas = [1.0 + 0.9 * 1.0 - 0.5, 2.0 - 1.0, 0.5 + 0.9 * 3.0 - 2.0, 1.0 + 0.9 * 5.0 - 3.0]
    a3 = deltas[3]
    a2 = deltas[2] + g * lam * a3
    a1 = deltas[1]  # done: nothing flows back from the next episode
    a0 = deltas[0] + g * lam * a1
    adv, ret = _gae(r, v, nv, done, term, g, lam)
    np.testing.assert_allclose(adv, [a0, a1, a2, a3], rtol=1e-6)
    np.testing.assert_allclose(ret, np.array([a0, a1, a2, a3]) + v, rtol=1e-6)


def test_gae_limits_td_and_monte_carlo():
    key = jax.random.PRNGKey(0)
    r, v = jax.random.normal(key, (2, 6, 3))
    nv = jnp.concatenate([v[1:], jnp.zeros((1, 3))])  # consecutive states; the rollout ends after step 5
    zeros = jnp.zeros((6, 3))
    term = zeros.at[-1].set(1.0)  # the episode terminates on the last step
    adv0, _ = pg.gae(r, v, nv, term, term, 0.9, 0.0)  # λ = 0: one-step TD errors
    np.testing.assert_allclose(adv0, r + 0.9 * nv * (1 - term) - v, rtol=1e-5, atol=1e-6)
    _, ret1 = pg.gae(r, v, nv, term, term, 0.9, 1.0)  # λ = 1: discounted Monte-Carlo returns
    mc = np.zeros((6, 3))
    running = np.zeros(3)
    for t in reversed(range(6)):
        running = np.asarray(r[t]) + 0.9 * running
        mc[t] = running
    np.testing.assert_allclose(ret1, mc, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "ratio, advantage, expected",
    [(1.5, 2.0, -1.2 * 2.0), (0.5, 2.0, -0.5 * 2.0), (1.5, -2.0, -1.5 * -2.0), (0.5, -2.0, -0.8 * -2.0),
     (1.0, 3.0, -3.0)],
)
def test_ppo_clip_loss_hand_cases(ratio, advantage, expected):
    loss = pg.ppo_clip_loss(jnp.log(jnp.float32(ratio)), jnp.float32(0.0), jnp.float32(advantage), 0.2)
    np.testing.assert_allclose(loss, expected, rtol=1e-6)


def test_ppo_clip_loss_gradient_vanishes_only_when_clipped():
    grad = jax.grad(lambda lp, a: pg.ppo_clip_loss(lp, 0.0, a, 0.2))
    assert float(grad(jnp.log(1.5), 2.0)) == 0.0  # ratio above 1 + ε with A > 0: clipped, no push further
    assert float(grad(jnp.log(1.1), 2.0)) < 0.0  # inside the trust region: increase the probability
    assert float(grad(jnp.log(0.5), 2.0)) < 0.0  # below 1 − ε with A > 0: the unclipped term still acts


def test_normalise():
    x = pg.normalise(jnp.array([1.0, 2.0, 3.0, 6.0]))
    np.testing.assert_allclose([float(jnp.mean(x)), float(jnp.std(x))], [0.0, 1.0], atol=1e-6)
