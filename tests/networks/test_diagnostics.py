"""Diagnostics on hand-computed cases, in both torso layouts."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from depthrl.networks.diagnostics import (
    block_activation_norms,
    block_grad_norms,
    dormant_ratio,
    effective_rank,
    flops_per_example,
    param_count,
)
from depthrl.networks.heads import Encoder
from depthrl.networks.torso import NetworkConfig, ResidualTorso, stack_block_params


def test_param_count_by_hand():
    x = jnp.ones((1, 3))
    # stem 3*8 + 8, stem LayerNorm 2*8, one block of 4 x (8*8 + 8 kernel+bias, 2*8 LayerNorm)
    layernorm = ResidualTorso(NetworkConfig(depth=4, width=8)).init(jax.random.key(0), x)["params"]
    assert param_count(layernorm) == (24 + 8) + 16 + 4 * (64 + 8 + 16) == 400
    no_norm = ResidualTorso(NetworkConfig(depth=4, width=8, norm="none")).init(jax.random.key(0), x)
    assert param_count(no_norm["params"]) == 32 + 4 * 72 == 320
    scan = ResidualTorso(NetworkConfig(depth=8, width=8, network_layout="scan")).init(jax.random.key(0), x)
    assert param_count(scan["params"]) == 48 + 2 * 352


def test_flops_per_example_by_hand():
    config = NetworkConfig(depth=4, width=8)
    # 2 x (stem 3*8 + 4 hidden 8*8 + head 8*2) multiply-adds
    assert flops_per_example(config, in_dim=3, out_dim=2) == 2 * (24 + 256 + 16) == 592
    assert flops_per_example(config, in_dim=3) == 2 * (24 + 256)


def test_effective_rank_of_known_matrices():
    key_a, key_b = jax.random.split(jax.random.key(0))
    rank_two = jax.random.normal(key_a, (50, 2)) @ jax.random.normal(key_b, (2, 10))
    assert int(effective_rank(rank_two)) == 2
    assert int(effective_rank(jnp.eye(6))) == 6
    # Equal singular values: half the mass needs half of them.
    assert int(effective_rank(jnp.eye(4), threshold=0.5)) == 2
    # One dominant direction plus a whisper: the whisper is below 1% of the mass.
    nearly_rank_one = jnp.diag(jnp.array([100.0, 0.5, 0.1]))
    assert int(jax.jit(effective_rank)(nearly_rank_one)) == 1


def test_dormant_ratio_of_known_dead_units():
    features = np.array(jax.random.normal(jax.random.key(0), (200, 8)))
    features[:, 1] = 0.0  # dead
    features[:, 5] = 0.0  # dead
    assert float(jax.jit(dormant_ratio)(jnp.asarray(features))) == pytest.approx(0.25)
    features[:, 3] *= 1e-3  # nearly dead: score ~ 1e-3 <= tau
    assert float(dormant_ratio(jnp.asarray(features))) == pytest.approx(0.375)
    assert float(dormant_ratio(jnp.asarray(features), tau=0.0)) == pytest.approx(0.25)
    assert float(dormant_ratio(jnp.zeros((4, 3)))) == 1.0  # all dead, no division by zero


def _both_layouts(depth: int = 12):
    x = jax.random.normal(jax.random.key(0), (5, 4))
    unrolled = NetworkConfig(depth=depth, width=16, network_layout="unrolled")
    scan = dataclasses.replace(unrolled, network_layout="scan")
    params = ResidualTorso(unrolled).init(jax.random.key(1), x)["params"]
    return x, (unrolled, params), (scan, stack_block_params(params))


def test_block_activation_norms_agree_across_layouts():
    x, *layouts = _both_layouts()
    norms = []
    for config, params in layouts:
        out, state = ResidualTorso(config).apply({"params": params}, x, mutable=["intermediates"])
        norms.append(jax.jit(block_activation_norms)(state["intermediates"]))
        assert norms[-1].shape == (3,)
        np.testing.assert_allclose(norms[-1][-1], jnp.mean(jnp.linalg.norm(out, axis=-1)), rtol=1e-5)
    np.testing.assert_allclose(norms[0], norms[1], rtol=1e-5)


def test_block_grad_norms_agree_across_layouts_and_by_hand():
    x, *layouts = _both_layouts()
    norms = []
    for config, params in layouts:
        grads = jax.grad(lambda p, c=config: jnp.sum(ResidualTorso(c).apply({"params": p}, x)))(params)
        norms.append(block_grad_norms(grads))
        assert norms[-1].shape == (3,)
        ones = jax.tree.map(jnp.ones_like, params)
        per_block = (param_count(ones) - param_count(ones["stem"]) - param_count(ones["stem_norm"])) / 3
        np.testing.assert_allclose(block_grad_norms(ones), np.sqrt(per_block), rtol=1e-6)
    np.testing.assert_allclose(norms[0], norms[1], rtol=1e-4)


def test_diagnostics_find_the_torso_inside_a_composite():
    x = jnp.ones((2, 3))
    for layout in ("scan", "unrolled"):
        encoder = Encoder(NetworkConfig(depth=8, width=8, network_layout=layout), out_dim=4)
        params = encoder.init(jax.random.key(0), x)["params"]
        _, state = encoder.apply({"params": params}, x, mutable=["intermediates"])
        assert block_activation_norms(state["intermediates"]).shape == (2,)
        assert block_grad_norms(params).shape == (2,)
    with pytest.raises(ValueError, match="one torso"):
        block_grad_norms({"a": params, "b": params})
