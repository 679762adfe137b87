"""Heads, tanh-Gaussian sampling and the torso + head modules."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.scipy.stats import norm as normal

from depthrl.errors import ConfigError
from depthrl.networks.heads import (
    CategoricalValueHead,
    Encoder,
    GaussianPolicy,
    RepresentationHead,
    ScalarHead,
    TanhGaussianHead,
    sample_tanh_gaussian,
    squash_log_std,
    tanh_gaussian_mode,
)
from depthrl.networks.torso import NetworkConfig

CONFIG = NetworkConfig(depth=4, width=16)
H = jax.random.normal(jax.random.key(0), (3, 7, 16))


def _init_apply(module, x):
    variables = module.init(jax.random.key(1), x)
    return variables["params"], module.apply(variables, x)


def test_linear_heads_shapes_and_float32_outputs():
    _, rep = _init_apply(RepresentationHead(5), H)
    _, logits = _init_apply(CategoricalValueHead(11), H.astype(jnp.bfloat16))
    _, scalar = _init_apply(ScalarHead(), H)
    assert rep.shape == (3, 7, 5) and rep.dtype == jnp.float32
    assert logits.shape == (3, 7, 11) and logits.dtype == jnp.float32  # float32 even after a bf16 torso
    assert scalar.shape == (3, 7)


def test_log_std_is_the_papers_smooth_tanh_rescaling():
    """log σ = −5 + 3.5 (tanh z + 1), the paper's code's form (not a clip), by hand."""
    z = jnp.array([0.0, 1.0, -0.5, 50.0, -50.0])
    t1, t05 = np.tanh(1.0), np.tanh(0.5)
    expected = [-1.5, -5 + 3.5 * (t1 + 1), -5 + 3.5 * (1 - t05), 2.0, -5.0]  # z = 0: −1.5
    np.testing.assert_allclose(squash_log_std(z, -5.0, 2.0), expected, rtol=1e-6)
    np.testing.assert_allclose(squash_log_std(z, -5.0, 2.0), -5 + 3.5 * (np.tanh(z) + 1), rtol=1e-6)
    # smooth: the gradient 3.5 (1 − tanh² z) is 3.5 at 0 and small but not 0 at z = 10 (a clip gives 0 there)
    grad = jax.vmap(jax.grad(lambda x: squash_log_std(x, -5.0, 2.0)))(jnp.array([0.0, 3.0, 10.0, -10.0]))
    np.testing.assert_allclose(grad, 3.5 / np.cosh([0.0, 3.0, 10.0, -10.0]) ** 2, rtol=1e-4)  # 2.9e-8 at ±10
    assert bool(jnp.all(grad > 0))


def test_tanh_gaussian_head_squashes_its_log_std_output():
    head = TanhGaussianHead(4, log_std_min=-5.0, log_std_max=2.0)
    params, (mean, log_std) = _init_apply(head, H)
    assert mean.shape == log_std.shape == (3, 7, 4)
    z = H.astype(jnp.float32) @ params["log_std"]["kernel"] + params["log_std"]["bias"]
    np.testing.assert_allclose(log_std, -5 + 3.5 * (np.tanh(z) + 1), rtol=1e-5, atol=1e-5)
    assert abs(float(jnp.mean(log_std)) + 1.5) < 0.5  # about −1.5 at init (z is O(1) around 0)
    for bias, expected in ((100.0, 2.0), (-100.0, -5.0)):  # saturates at the ends of (−5, 2)
        params["log_std"]["bias"] = jnp.full((4,), bias)
        _, saturated = head.apply({"params": params}, H)
        np.testing.assert_allclose(saturated, expected, atol=1e-6)


def test_tanh_gaussian_log_prob_matches_the_change_of_variables_density():
    mean = jnp.array([[0.3, -1.0, 2.0]])
    log_std = jnp.array([[-0.5, 0.2, -1.0]])
    action, log_prob = sample_tanh_gaussian(jax.random.key(3), mean, log_std)
    assert action.shape == (1, 3) and log_prob.shape == (1,)
    # Independent reference: invert the squashing and divide by |da/du| = 1 - a^2.
    pre_tanh = jnp.arctanh(action)
    reference = normal.logpdf(pre_tanh, mean, jnp.exp(log_std)) - jnp.log1p(-jnp.square(action))
    np.testing.assert_allclose(log_prob, jnp.sum(reference, axis=-1), rtol=1e-4)


def test_tanh_gaussian_log_prob_is_finite_where_the_naive_form_is_not():
    # tanh(u) rounds to 1.0 in float32, so log(1 - a^2) = -inf (at u = 30 for every XLA code path: at optimisation
    # level 0, as the suite compiles, XLA's tanh still gives 0.99999982 at u = 15)
    mean = jnp.full((1000, 2), 30.0)
    action, log_prob = sample_tanh_gaussian(jax.random.key(4), mean, jnp.full((1000, 2), -5.0))
    assert bool(jnp.all(jnp.isfinite(log_prob)))
    assert float(jnp.max(jnp.abs(action))) <= 1.0
    naive = jnp.log(1 - jnp.square(action))
    assert not bool(jnp.all(jnp.isfinite(naive)))


def test_tanh_gaussian_samples_are_reparameterised_and_keyed():
    mean, log_std = jnp.zeros((2, 3)), jnp.zeros((2, 3))
    a1, _ = sample_tanh_gaussian(jax.random.key(0), mean, log_std)
    a2, _ = sample_tanh_gaussian(jax.random.key(0), mean, log_std)
    a3, _ = sample_tanh_gaussian(jax.random.key(1), mean, log_std)
    np.testing.assert_array_equal(a1, a2)
    assert not np.allclose(a1, a3)
    grad = jax.grad(lambda m: jnp.sum(sample_tanh_gaussian(jax.random.key(0), m, log_std)[0]))(mean)
    assert bool(jnp.all(grad > 0))  # gradients flow through the sample to the mean


def test_tanh_gaussian_mode():
    mean = jnp.array([0.0, 1.0, -30.0])
    np.testing.assert_allclose(tanh_gaussian_mode(mean), [0.0, np.tanh(1.0), -1.0], rtol=1e-6)


def test_encoder_and_policy_shapes_and_trees():
    x = jax.random.normal(jax.random.key(0), (6, 9))
    params, out = _init_apply(Encoder(CONFIG, out_dim=3), x)
    assert out.shape == (6, 3)
    assert set(params) == {"torso", "head"}
    params, (mean, log_std) = _init_apply(GaussianPolicy(CONFIG, action_dim=2), x)
    assert mean.shape == log_std.shape == (6, 2)
    assert set(params["head"]) == {"mean", "log_std"}


def test_head_init_keeps_outputs_order_one():
    x = jax.random.normal(jax.random.key(0), (512, 9))
    _, out = _init_apply(Encoder(NetworkConfig(depth=8, width=64), out_dim=16), x)
    assert 0.1 < float(jnp.std(out)) < 3.0


def test_composites_validate_the_depth():
    with pytest.raises(ConfigError, match="4 or 8"):
        Encoder(NetworkConfig(depth=6, width=8), out_dim=2).init(jax.random.key(0), jnp.ones((1, 3)))
