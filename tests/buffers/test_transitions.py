"""Flat transition replay: ring writes, valid range, uniform sampling of the written entries only."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from depthrl.buffers import transitions as tbuf


def _batch(start, n):
    ids = jnp.arange(start, start + n, dtype=jnp.float32)
    return {"obs": jnp.stack([ids, -ids], axis=1), "action": jnp.arange(start, start + n, dtype=jnp.int32)}


def test_ring_writes_and_size():
    state = tbuf.init({"obs": jnp.zeros((2,)), "action": jnp.zeros((), jnp.int32)}, capacity=5)
    assert state.data["obs"].shape == (5, 2) and state.data["action"].dtype == jnp.int32
    state = tbuf.add(state, _batch(0, 3))
    assert int(state.size) == 3 and int(state.position) == 3
    state = tbuf.add(state, _batch(3, 3))  # wraps: entry 5 overwrites the oldest (0)
    assert int(state.size) == 5 and int(state.position) == 1
    np.testing.assert_array_equal(state.data["action"], [5, 1, 2, 3, 4])
    np.testing.assert_array_equal(state.data["obs"][:, 1], -np.array([5, 1, 2, 3, 4]))


def test_sample_draws_only_written_entries_uniformly():
    state = tbuf.init({"obs": jnp.zeros((2,)), "action": jnp.zeros((), jnp.int32)}, capacity=100)
    state = tbuf.add(state, _batch(10, 4))  # entries 10..13, the other 96 rows are still zeros
    sample = jax.jit(tbuf.sample, static_argnums=2)(state, jax.random.PRNGKey(0), 4000)
    actions = np.asarray(sample["action"])
    assert set(actions.tolist()) == {10, 11, 12, 13}
    np.testing.assert_allclose(np.bincount(actions - 10) / 4000, 0.25, atol=0.03)
    np.testing.assert_array_equal(sample["obs"][:, 0], actions)  # fields of one transition stay together


def test_add_checks_fields_and_size():
    state = tbuf.init({"obs": jnp.zeros((2,)), "action": jnp.zeros((), jnp.int32)}, capacity=2)
    with pytest.raises(ValueError, match="capacity"):
        tbuf.add(state, _batch(0, 3))
    with pytest.raises(ValueError, match="fields"):
        tbuf.add(state, {"obs": jnp.zeros((1, 2))})
