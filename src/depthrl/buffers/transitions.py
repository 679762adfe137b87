"""Flat transition replay for envs whose episodes end early (DQN on gymnax / probes), as pure functions
over a pytree state (flashbax style): `init`, `add`, `sample`.

Each entry is one transition, e.g. {obs, action, reward, next_obs, terminated}, stored whole: episodes of
different lengths need no bookkeeping (the trajectory buffer of `buffers.trajectory` relies on fixed-length
synchronised episodes instead, which goal relabelling needs). Memory is twice the observations (obs and
next_obs), the price of O(1) sampling with no episode-boundary logic.

Layout: `data[field]` has shape [capacity, ...], written as a ring at `position`; `size` entries are valid.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct


@struct.dataclass
class TransitionBuffer:
    data: dict[str, jax.Array]  # field -> [capacity, ...]
    position: jax.Array  # [] int32: index the next entry is written to
    size: jax.Array  # [] int32: valid entries (<= capacity)


def capacity(state: TransitionBuffer) -> int:
    return next(iter(state.data.values())).shape[0]


def init(example: dict[str, Any], capacity: int) -> TransitionBuffer:
    """Empty buffer. example: field -> one transition's array (no batch axis), for shapes and dtypes."""
    if capacity < 1:
        raise ValueError(f"capacity must be >= 1, got {capacity}")
    data = {k: jnp.zeros((capacity,) + jnp.shape(v), jnp.asarray(v).dtype) for k, v in example.items()}
    zero = jnp.zeros((), jnp.int32)
    return TransitionBuffer(data=data, position=zero, size=zero)


def add(state: TransitionBuffer, batch: dict[str, jax.Array]) -> TransitionBuffer:
    """Append n transitions: batch maps every field to [n, ...] (n <= capacity; static).

    Written at (position + arange(n)) mod capacity, so n need not divide the capacity; the oldest entries
    are overwritten first.
    """
    cap = capacity(state)
    n = next(iter(batch.values())).shape[0]
    if n > cap:
        raise ValueError(f"adding {n} transitions to a buffer of capacity {cap}")
    if set(batch) != set(state.data):
        raise ValueError(f"fields {sorted(batch)} differ from the buffer's {sorted(state.data)}")
    idx = (state.position + jnp.arange(n)) % cap
    data = {k: state.data[k].at[idx].set(batch[k].astype(state.data[k].dtype)) for k in state.data}
    return TransitionBuffer(data=data, position=(state.position + n) % cap,
                            size=jnp.minimum(state.size + n, cap).astype(jnp.int32))


def sample(state: TransitionBuffer, key: jax.Array, batch_size: int) -> dict[str, jax.Array]:
    """batch_size transitions drawn uniformly with replacement from the valid entries: field -> [B, ...].

    Requires size > 0 (an empty buffer returns its zero-initialised first entry).
    """
    idx = jax.random.randint(key, (batch_size,), 0, jnp.maximum(state.size, 1))
    return {k: v[idx] for k, v in state.data.items()}
