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


# -- accuracy under a reduced-precision matmul (TF32 on A100/H100/H200 GPUs), emulated on the CPU ------------------

def tf32(x: jax.Array, truncate: bool = False) -> jax.Array:
    """float32 -> the nearest float32 with a 10-bit mantissa (TF32's), or the one below in magnitude (truncate)."""
    bits = jax.lax.bitcast_convert_type(jnp.asarray(x, jnp.float32), jnp.uint32)
    if not truncate:
        bits = bits + jnp.uint32(1 << 12)  # half of the lowest kept bit: round to nearest (ties away from 0)
    return jax.lax.bitcast_convert_type(bits & jnp.uint32(0xFFFFE000), jnp.float32)


def test_tf32_emulation_keeps_ten_mantissa_bits():
    x = np.array([1.0, 1 + 2**-10, 1 + 2**-12, 1 + 3 * 2**-12, -(1 + 3 * 2**-12), 3.0], np.float32)
    np.testing.assert_array_equal(tf32(x), [1.0, 1 + 2**-10, 1.0, 1 + 2**-10, -(1 + 2**-10), 3.0])
    np.testing.assert_array_equal(tf32(x, truncate=True), [1.0, 1 + 2**-10, 1.0, 1.0, -1.0, 3.0])


@pytest.fixture(params=[False, True], ids=["tf32-round", "tf32-truncate"])
def tf32_matmul(request, monkeypatch):
    """The energies' matmul sees its inputs rounded to TF32, as a GPU's TF32 matmul does."""
    exact = cl._matmul_t
    monkeypatch.setattr(cl, "_matmul_t", lambda a, b, precision: exact(tf32(a, request.param), tf32(b, request.param),
                                                                       precision))
    return request.param


def _drifted_representations(offset_norm: float, b: int = 128, d: int = 64, seed: int = 0):
    """φ, ψ in float64 as CRL makes them (per-coordinate std 0.5, positives ψ_i near φ_i), both shifted by one
    shared random offset of norm offset_norm (the energy cannot see it; it drifts freely in training)."""
    rng = np.random.default_rng(seed)
    phi = 0.5 * rng.normal(size=(b, d))
    psi = phi + 0.1 * rng.normal(size=(b, d))
    offset = rng.normal(size=d)
    offset *= offset_norm / np.linalg.norm(offset)
    return phi + offset, psi + offset


def _old_form_l2(phi, psi):
    """The energy before centring: ‖φ‖² + ‖ψ‖² − 2φψᵀ of the raw inputs (through the same, patched, matmul)."""
    sq = jnp.sum(phi**2, -1)[:, None] + jnp.sum(psi**2, -1)[None, :] - 2.0 * cl._matmul_t(phi, psi, None)
    return -jnp.sqrt(jnp.maximum(sq, 0.0) + 1e-12)


def _errors(logits_fn, offset_norm):
    phi, psi = _drifted_representations(offset_norm)
    reference = -np.sqrt(np.sum((phi[:, None] - psi[None]) ** 2, -1))  # float64, exact difference form
    logits = np.asarray(logits_fn(jnp.asarray(phi, jnp.float32), jnp.asarray(psi, jnp.float32)), np.float64)
    error = np.abs(logits - reference)
    return np.max(np.diagonal(error)), np.max(error), reference


@pytest.mark.parametrize("offset_norm", [0.0, 10.0, 50.0, 100.0])
def test_l2_logits_accurate_under_tf32_for_drifted_representations(tf32_matmul, offset_norm):
    pos_error, all_error, reference = _errors(lambda p, q: cl.critic_logits(p, q, "l2"), offset_norm)
    assert pos_error <= 1e-3  # positives: the exact difference form, no matmul
    # Negatives (‖φ − ψ‖ ≈ 5.7 here) go through the centred matmul: TF32's relative 2^-11 of the spread,
    # not of the offset. Measured 4.9e-4 (round) and 1.7e-3 (truncate) at every offset; the old form 0.8 to 3.6.
    assert all_error <= 1e-2
    assert np.mean(np.abs(np.diagonal(reference))) < 1.0 < np.mean(np.abs(reference))  # positives close, negatives far


@pytest.mark.parametrize("offset_norm", [10.0, 100.0])
def test_old_matmul_form_fails_the_same_bound(tf32_matmul, offset_norm):
    """So the test above can fail: the old form misses its bounds (positives by 20x to 3600x here)."""
    pos_error, all_error, _ = _errors(_old_form_l2, offset_norm)
    assert pos_error > 2e-2 and all_error > 2e-2


def test_centred_matrix_also_fixes_the_off_diagonal_and_l2_squared(tf32_matmul):
    """energy_matrix alone (no exact diagonal): centring keeps every entry at TF32 accuracy of the spread."""
    phi, psi = _drifted_representations(100.0, b=32)
    p, q = jnp.asarray(phi, jnp.float32), jnp.asarray(psi, jnp.float32)
    sq_reference = np.sum((phi[:, None] - psi[None]) ** 2, -1)
    np.testing.assert_allclose(cl.energy_matrix(p, q, "l2_squared"), -sq_reference, atol=0.05)  # |sq| up to ~50
    off = ~np.eye(32, dtype=bool)  # close pairs (the diagonal) lose more in −sqrt(·): critic_logits recomputes them
    np.testing.assert_allclose(np.asarray(cl.energy_matrix(p, q, "l2"))[off], -np.sqrt(sq_reference)[off], atol=1e-2)


@pytest.mark.parametrize("energy", cl.ENERGIES)
def test_critic_logits_diagonal_is_the_pairwise_energy_and_the_rest_the_matrix(energy):
    k1, k2 = jax.random.split(jax.random.PRNGKey(1))
    a, b = jax.random.normal(k1, (6, 4)) + 30.0, jax.random.normal(k2, (6, 4)) + 30.0
    logits = cl.critic_logits(a, b, energy, 0.5)
    np.testing.assert_array_equal(jnp.diagonal(logits), cl.energy_pairwise(a, b, energy, 0.5))
    off = ~np.eye(6, dtype=bool)
    np.testing.assert_array_equal(np.asarray(logits)[off], np.asarray(cl.energy_matrix(a, b, energy, 0.5))[off])
    grads, expected = jax.jit(lambda x: (jax.grad(lambda x: jnp.sum(cl.critic_logits(x, b, energy, 0.5)))(x),
                                         jax.grad(lambda x: jnp.sum(cl.energy_matrix(x, b, energy, 0.5)))(x)))(a)
    np.testing.assert_allclose(grads, expected, rtol=1e-3, atol=1e-3)  # same function, same gradient


def test_centring_leaves_the_gradient_unchanged():
    """The shared mean is held fixed in the backward pass; the exact distance's gradient is reproduced."""
    k1, k2 = jax.random.split(jax.random.PRNGKey(2))
    a, b = jax.random.normal(k1, (5, 3)) + 10.0, jax.random.normal(k2, (4, 3)) + 10.0
    weights = jnp.arange(20.0).reshape(5, 4)

    def exact(x, y):
        return -jnp.sqrt(jnp.sum((x[:, None] - y[None]) ** 2, -1))

    def grads(energy_fn):
        return jax.jit(jax.grad(lambda x, y: jnp.sum(weights * energy_fn(x, y)), argnums=(0, 1)))(a, b)

    ours, expected = grads(lambda x, y: cl.energy_matrix(x, y, "l2")), grads(exact)
    for g, e in zip(ours, expected, strict=True):
        np.testing.assert_allclose(g, e, rtol=1e-4, atol=1e-4)
