"""Contrastive losses against hand-computed small cases."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from depthrl.losses import contrastive as cl

PHI = jnp.array([[0.0, 0.0], [3.0, 4.0]])
PSI = jnp.array([[0.0, 0.0], [0.0, 4.0]])


def test_energies_by_hand():
    # pairs: (0,0)->0, (0,1)->4, (1,0)->5, (1,1)->3 in Euclidean distance
    d = np.array([[0.0, 4.0], [5.0, 3.0]])
    np.testing.assert_allclose(cl.energy_matrix(PHI, PSI, "l2"), -d, atol=1e-5)
    np.testing.assert_allclose(cl.energy_matrix(PHI, PSI, "l2_squared"), -(d**2), atol=1e-4)
    np.testing.assert_allclose(cl.energy_matrix(PHI, PSI, "dot"), [[0, 0], [0, 16]], atol=1e-6)
    a, b = jnp.array([[1.0, 0.0], [0.0, 2.0]]), jnp.array([[2.0, 0.0], [1.0, 1.0]])
    s = 1 / math.sqrt(2)
    np.testing.assert_allclose(cl.energy_matrix(a, b, "cosine", temperature=0.5), [[2, 2 * s], [0, 2 * s]],
                               atol=1e-5)


@pytest.mark.parametrize("energy", cl.ENERGIES)
def test_pairwise_is_the_diagonal(energy):
    k1, k2 = jax.random.split(jax.random.PRNGKey(0))
    a, b = jax.random.normal(k1, (5, 3)), jax.random.normal(k2, (5, 3))
    np.testing.assert_allclose(cl.energy_pairwise(a, b, energy, 0.3),
                               jnp.diagonal(cl.energy_matrix(a, b, energy, 0.3)), rtol=1e-5, atol=1e-5)


def test_l2_gradient_finite_at_zero_distance():
    g = jax.grad(lambda x: jnp.sum(cl.energy_matrix(x, x, "l2")))(PHI)
    assert np.all(np.isfinite(g))


LOGITS = jnp.array([[2.0, 0.0], [1.0, 3.0]])


def test_forward_and_backward_infonce_by_hand():
    fwd = [-(2 - math.log(math.exp(2) + 1)), -(3 - math.log(math.exp(1) + math.exp(3)))]
    bwd = [-(2 - math.log(math.exp(2) + math.exp(1))), -(3 - math.log(1 + math.exp(3)))]
    np.testing.assert_allclose(cl.contrastive_loss(LOGITS, "forward_infonce"), fwd, rtol=1e-6)
    np.testing.assert_allclose(cl.contrastive_loss(LOGITS, "backward_infonce"), bwd, rtol=1e-6)
    np.testing.assert_allclose(cl.contrastive_loss(LOGITS, "symmetric_infonce"),
                               0.5 * (np.array(fwd) + np.array(bwd)), rtol=1e-6)


def test_binary_nce_by_hand():
    def bce(x, y):
        p = 1 / (1 + math.exp(-x))
        return -(y * math.log(p) + (1 - y) * math.log(1 - p))

    expected = [bce(2, 1) + bce(0, 0), bce(3, 1) + bce(1, 0)]
    np.testing.assert_allclose(cl.contrastive_loss(LOGITS, "binary_nce"), expected, rtol=1e-5)


def test_logsumexp_penalty_and_accuracy():
    np.testing.assert_allclose(cl.logsumexp_penalty(LOGITS),
                               [math.log(math.exp(2) + 1) ** 2, math.log(math.e + math.exp(3)) ** 2], rtol=1e-6)
    np.testing.assert_allclose(cl.logits_accuracy(jnp.array([[2.0, 0.0], [4.0, 3.0]])), [1.0, 0.0])


def test_unknown_names_raise():
    with pytest.raises(ValueError, match="energy"):
        cl.energy_matrix(PHI, PSI, "manhattan")
    with pytest.raises(ValueError, match="objective"):
        cl.contrastive_loss(LOGITS, "triplet")
