"""Residual torso behaviour: shapes, layouts, every flag, depth validation, depth-independent compile."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from depthrl.errors import ConfigError
from depthrl.networks import torso as torso_module
from depthrl.networks.torso import (
    NetworkConfig,
    ResidualTorso,
    check_depth,
    stack_block_params,
    unstack_block_params,
)

IN_DIM = 5
SMALL = NetworkConfig(depth=8, width=32)


def _x(batch: int = 6) -> jax.Array:
    return jax.random.normal(jax.random.key(42), (batch, IN_DIM))


def _init(config: NetworkConfig, x: jax.Array | None = None, seed: int = 0):
    x = _x() if x is None else x
    return ResidualTorso(config).init(jax.random.key(seed), x)["params"]


def _apply(config: NetworkConfig, params, x: jax.Array) -> jax.Array:
    return ResidualTorso(config).apply({"params": params}, x)


def _grads(config: NetworkConfig, params, x: jax.Array):
    return jax.grad(lambda p: jnp.sum(jnp.sin(_apply(config, p, x))))(params)


def _assert_trees_close(a, b, rtol=1e-5, atol=1e-6):
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for leaf_a, leaf_b in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_allclose(np.asarray(leaf_a), np.asarray(leaf_b), rtol=rtol, atol=atol)


@pytest.mark.parametrize("layout", ["scan", "unrolled"])
def test_output_shape_and_leading_axes(layout):
    config = dataclasses.replace(SMALL, network_layout=layout)
    x = jax.random.normal(jax.random.key(0), (2, 3, IN_DIM))
    params = _init(config, x)
    assert _apply(config, params, x).shape == (2, 3, 32)


def test_param_tree_naming_of_both_layouts():
    unrolled = _init(dataclasses.replace(SMALL, network_layout="unrolled"))
    scan = _init(dataclasses.replace(SMALL, network_layout="scan"))
    assert set(unrolled) == {"stem", "stem_norm", "block_0", "block_1"}
    assert set(unrolled["block_0"]) == {f"{kind}_{j}" for kind in ("dense", "norm") for j in range(4)}
    assert set(scan) == {"stem", "stem_norm", "blocks"}
    assert scan["blocks"]["dense_0"]["kernel"].shape == (2, 32, 32)
    assert scan["blocks"]["norm_3"]["scale"].shape == (2, 32)


def test_auto_layout_unrolls_small_and_scans_large():
    threshold = torso_module.AUTO_UNROLL_MAX_DEPTH
    assert NetworkConfig(depth=threshold).resolved_layout() == "unrolled"
    assert NetworkConfig(depth=threshold + 4).resolved_layout() == "scan"
    assert set(_init(NetworkConfig(depth=threshold + 4, width=8))) == {"stem", "stem_norm", "blocks"}


def test_init_is_the_paper_variance_scaling_with_zero_bias():
    params = _init(NetworkConfig(depth=4, width=256))
    kernel = params["block_0"]["dense_0"]["kernel"]
    bound = np.sqrt(1.0 / 256)  # uniform(-b, b) with b^2 / 3 = (1/3) / fan_in
    assert float(jnp.max(jnp.abs(kernel))) <= bound
    np.testing.assert_allclose(float(jnp.std(kernel)), np.sqrt(1 / (3 * 256)), rtol=0.02)
    assert not np.any(np.asarray(params["block_0"]["dense_0"]["bias"]))


@pytest.mark.parametrize("norm", ["layernorm", "rmsnorm", "none"])
@pytest.mark.parametrize("remat", [False, True])
def test_scan_and_unrolled_agree_on_values_and_grads(norm, remat):
    x = _x()
    unrolled_config = dataclasses.replace(SMALL, depth=12, norm=norm, remat=remat, network_layout="unrolled")
    scan_config = dataclasses.replace(unrolled_config, network_layout="scan")
    unrolled_params = _init(unrolled_config, x)
    scan_params = stack_block_params(unrolled_params)
    assert jax.tree.structure(scan_params) == jax.tree.structure(_init(scan_config, x))

    np.testing.assert_allclose(
        _apply(scan_config, scan_params, x), _apply(unrolled_config, unrolled_params, x), rtol=1e-5, atol=1e-6
    )
    scan_grads = _grads(scan_config, scan_params, x)
    unrolled_grads = _grads(unrolled_config, unrolled_params, x)
    # float32 summation order differs between the fused loop and the unrolled graph: ~1e-6 relative noise.
    _assert_trees_close(scan_grads, stack_block_params(unrolled_grads), rtol=1e-4, atol=1e-5)
    _assert_trees_close(unstack_block_params(scan_grads), unrolled_grads, rtol=1e-4, atol=1e-5)


def test_stack_unstack_round_trip_is_exact():
    params = _init(dataclasses.replace(SMALL, network_layout="unrolled"))
    round_trip = unstack_block_params(stack_block_params(params))
    assert jax.tree.structure(round_trip) == jax.tree.structure(params)
    for a, b in zip(jax.tree.leaves(round_trip), jax.tree.leaves(params), strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("layout", ["scan", "unrolled"])
def test_skip_off_changes_outputs_not_params(layout):
    x = _x()
    with_skip = dataclasses.replace(SMALL, network_layout=layout)
    without_skip = dataclasses.replace(with_skip, skip=False)
    params = _init(with_skip, x)
    assert jax.tree.structure(params) == jax.tree.structure(_init(without_skip, x))
    # Without the skip, a block's output is its last activation; with it, the input is added back.
    assert not np.allclose(_apply(with_skip, params, x), _apply(without_skip, params, x), atol=1e-3)


def test_norm_choices_build_different_params_and_outputs():
    x = _x()
    outputs = {}
    for norm in ("layernorm", "rmsnorm", "none"):
        config = dataclasses.replace(SMALL, norm=norm, network_layout="unrolled")
        params = _init(config, x)
        block = params["block_0"]
        if norm == "none":
            assert set(block) == {f"dense_{j}" for j in range(4)} and "stem_norm" not in params
        elif norm == "rmsnorm":
            assert set(block["norm_0"]) == {"scale"}  # no centering, no bias
        else:
            assert set(block["norm_0"]) == {"scale", "bias"}
        outputs[norm] = _apply(config, params, x)
    # The same seed gives the same Dense kernels, so differences come from the norm alone.
    assert not np.allclose(outputs["layernorm"], outputs["rmsnorm"], atol=1e-3)
    assert not np.allclose(outputs["layernorm"], outputs["none"], atol=1e-3)


def test_layernorm_normalises_every_layer():
    config = dataclasses.replace(SMALL, depth=4, skip=False, activation="tanh", network_layout="unrolled")
    params = _init(config, _x())
    # Make the last layer's pre-activation huge: LayerNorm rescales it, so tanh does not saturate to ±1.
    params["block_0"]["dense_3"]["kernel"] = params["block_0"]["dense_3"]["kernel"] * 1000.0
    assert float(jnp.max(jnp.abs(_apply(config, params, _x())))) < 0.999
    no_norm = dataclasses.replace(config, norm="none")
    params = _init(no_norm, _x())
    params["block_0"]["dense_3"]["kernel"] = params["block_0"]["dense_3"]["kernel"] * 1000.0
    assert float(jnp.max(jnp.abs(_apply(no_norm, params, _x())))) > 0.999


def test_each_activation_gives_a_different_function():
    x = _x()
    outputs = {}
    for activation in ("swish", "relu", "gelu", "tanh"):
        config = dataclasses.replace(SMALL, activation=activation, skip=False)
        outputs[activation] = np.asarray(_apply(config, _init(config, x), x))
    assert np.all(outputs["relu"] >= 0)  # no skip: the output is a relu
    assert np.all(np.abs(outputs["tanh"]) < 1)
    names = list(outputs)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            assert not np.allclose(outputs[a], outputs[b], atol=1e-3), (a, b)


@pytest.mark.parametrize("layout", ["scan", "unrolled"])
def test_bfloat16_compute_and_param_dtypes(layout):
    x = _x()
    config = dataclasses.replace(SMALL, network_layout=layout, dtype="bfloat16")
    params = _init(config, x)
    assert all(leaf.dtype == jnp.float32 for leaf in jax.tree.leaves(params))
    out, state = ResidualTorso(config).apply({"params": params}, x, mutable=["intermediates"])
    assert out.dtype == jnp.bfloat16
    # Close to the float32 network with the same weights (bf16 keeps ~3 significant digits).
    reference = _apply(dataclasses.replace(config, dtype="float32"), params, x)
    np.testing.assert_allclose(np.asarray(out, np.float32), reference, rtol=0.1, atol=0.1)

    bf16_params = _init(dataclasses.replace(config, param_dtype="bfloat16"), x)
    assert all(leaf.dtype == jnp.bfloat16 for leaf in jax.tree.leaves(bf16_params))


@pytest.mark.parametrize("layout", ["scan", "unrolled"])
def test_remat_gives_identical_values_and_grads(layout):
    x = _x()
    config = dataclasses.replace(SMALL, network_layout=layout)
    remat_config = dataclasses.replace(config, remat=True)
    params = _init(config, x)
    assert jax.tree.structure(params) == jax.tree.structure(_init(remat_config, x))
    np.testing.assert_allclose(
        _apply(remat_config, params, x), _apply(config, params, x), rtol=1e-6, atol=1e-6
    )
    # The backward pass recomputes the forward, which XLA may fuse otherwise: equal up to float rounding (at
    # optimisation level 0 one gradient entry in 2048 differs by 5e-6 relative).
    _assert_trees_close(_grads(remat_config, params, x), _grads(config, params, x), rtol=1e-5, atol=1e-6)


def test_remat_appears_in_the_backward_pass():
    x = _x()
    config = dataclasses.replace(SMALL, network_layout="unrolled")
    params = _init(config, x)

    def jaxpr_text(cfg):
        return str(jax.make_jaxpr(lambda p: _grads(cfg, p, x))(params))

    assert "remat" not in jaxpr_text(config) and "checkpoint" not in jaxpr_text(config)
    remat_text = jaxpr_text(dataclasses.replace(config, remat=True))
    assert "remat" in remat_text or "checkpoint" in remat_text


def test_depth_not_a_multiple_of_the_block_fails_with_nearest_values():
    with pytest.raises(ConfigError) as error:
        NetworkConfig(depth=6).validate()
    assert error.value.flag == "--depth"
    assert "4 or 8" in str(error.value)

    with pytest.raises(ConfigError, match="--critic-depth") as error:
        NetworkConfig(depth=6).validate(depth_flag="--critic-depth")
    with pytest.raises(ConfigError, match="nearest valid: 4$"):
        check_depth("--depth", 2, 4)
    with pytest.raises(ConfigError, match="nearest valid: 3 or 6"):
        check_depth("--depth", 5, 3)
    for depth in (0, -3):
        with pytest.raises(ConfigError, match="nearest valid: 4$"):
            check_depth("--depth", depth, 4)
    check_depth("--depth", 12, 4)
    NetworkConfig(depth=6, layers_per_block=2).validate()


@pytest.mark.parametrize("layout", ["scan", "unrolled", "auto"])
def test_the_module_refuses_a_bad_depth_instead_of_truncating(layout):
    with pytest.raises(ConfigError, match="--depth"):
        ResidualTorso(NetworkConfig(depth=6, width=8, network_layout=layout)).init(jax.random.key(0), _x())


@pytest.mark.parametrize(
    ("field", "value", "flag"),
    [
        ("width", 0, "--width"),
        ("layers_per_block", 0, "--layers-per-block"),
        ("norm", "batchnorm", "--norm"),
        ("activation", "elu", "--activation"),
        ("network_layout", "pipelined", "--network-layout"),
        ("dtype", "float16", "--dtype"),
        ("param_dtype", "int8", "--param-dtype"),
    ],
)
def test_validate_names_the_flag_of_each_field(field, value, flag):
    with pytest.raises(ConfigError) as error:
        dataclasses.replace(NetworkConfig(), **{field: value}).validate()
    assert error.value.flag == flag


def test_depth_256_scan_network_takes_a_finite_adam_step():
    config = NetworkConfig(depth=256, width=8, network_layout="scan")
    x = _x(4)
    target = jnp.ones((4, 8))
    params = _init(config, x)
    optimizer = optax.adam(1e-3)

    def loss_fn(p):
        return jnp.mean(jnp.square(_apply(config, p, x) - target))

    @jax.jit
    def step(p, opt_state):
        loss, grads = jax.value_and_grad(loss_fn)(p)
        updates, opt_state = optimizer.update(grads, opt_state, p)
        return optax.apply_updates(p, updates), opt_state, loss, grads

    new_params, _, loss, grads = step(params, optimizer.init(params))
    assert params["blocks"]["dense_0"]["kernel"].shape[0] == 64
    assert np.isfinite(float(loss))
    assert all(bool(jnp.all(jnp.isfinite(g))) for g in jax.tree.leaves(grads))
    assert float(jnp.max(jnp.abs(grads["blocks"]["dense_0"]["kernel"][0]))) > 0  # the first block learns
    assert float(loss_fn(new_params)) < float(loss)


def _count_activation_traces(monkeypatch, config: NetworkConfig) -> tuple[int, int]:
    """(Python calls of the activation while lowering grad(apply), length of the lowered HLO text)."""
    calls = []
    swish = torso_module._ACTIVATION_FNS["swish"]
    monkeypatch.setitem(torso_module._ACTIVATION_FNS, "swish", lambda h: calls.append(1) or swish(h))
    x = _x(4)
    params = jax.eval_shape(lambda: _init(config, x))
    calls.clear()
    text = jax.jit(lambda p: _grads(config, p, x)).lower(params).as_text()
    return len(calls), len(text)


def test_scan_trace_count_and_hlo_size_do_not_grow_with_depth(monkeypatch):
    shallow = _count_activation_traces(monkeypatch, NetworkConfig(depth=8, width=8, network_layout="scan"))
    deep = _count_activation_traces(monkeypatch, NetworkConfig(depth=128, width=8, network_layout="scan"))
    assert shallow[0] == deep[0]
    assert deep[1] < 1.05 * shallow[1]  # only the shape constants (2 vs 32 blocks) differ

    # The test can see growth: the unrolled layout traces every block.
    unrolled = NetworkConfig(depth=8, width=8, network_layout="unrolled")
    unrolled_shallow = _count_activation_traces(monkeypatch, unrolled)
    unrolled_deep = _count_activation_traces(monkeypatch, dataclasses.replace(unrolled, depth=32))
    assert unrolled_deep[0] > 3 * unrolled_shallow[0] - 4
    assert unrolled_deep[1] > 3 * unrolled_shallow[1]


@pytest.mark.parametrize("remat", [False, True])
def test_each_block_sows_its_output_norm_in_both_layouts(remat):
    x = _x()
    unrolled_config = dataclasses.replace(SMALL, depth=12, network_layout="unrolled", remat=remat)
    scan_config = dataclasses.replace(unrolled_config, network_layout="scan")
    unrolled_params = _init(unrolled_config, x)
    out, unrolled_state = ResidualTorso(unrolled_config).apply(
        {"params": unrolled_params}, x, mutable=["intermediates"]
    )
    _, scan_state = ResidualTorso(scan_config).apply(
        {"params": stack_block_params(unrolled_params)}, x, mutable=["intermediates"]
    )
    unrolled_norms = [unrolled_state["intermediates"][f"block_{i}"]["out_norm"][0] for i in range(3)]
    scan_norms = scan_state["intermediates"]["blocks"]["out_norm"][0]
    assert scan_norms.shape == (3,)
    np.testing.assert_allclose(scan_norms, jnp.stack(unrolled_norms), rtol=1e-5)
    # The last block's output is the torso's output.
    np.testing.assert_allclose(unrolled_norms[-1], jnp.mean(jnp.linalg.norm(out, axis=-1)), rtol=1e-6)
