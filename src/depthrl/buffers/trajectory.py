"""Trajectory replay for goal-conditioned agents, as pure functions over a pytree state (flashbax style).

Layout: `data[field]` has shape [rows_per_env, num_envs, ...]: row r of column e is one env step of env e,
written as a ring. Every env starts its first episode on logical row 0 and episodes have a fixed length
L (the embedded envs never terminate early), so the step within its episode of logical row l is
`l mod L` for every env. That makes sampling O(1) per sample:

  * a row can serve as (s, a) if a later row of the same episode is already written,
  * its goal is the state `k` rows later, k ~ geometric(1 − γ) truncated to the rows left in the
    episode (P(k) ∝ γ^(k−1) for k = 1..R, as the paper's code renormalises the discounted future mask),

with no T × T matrix (the reference code builds one per trajectory: O(T²)).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct


@struct.dataclass
class BufferState:
    data: dict[str, jax.Array]  # field -> [rows_per_env, num_envs, ...]
    total_rows: jax.Array  # [] int32: logical rows written so far (per env)


def init(example: dict[str, jax.Array], rows_per_env: int, num_envs: int) -> BufferState:
    """Empty buffer. example: field -> one transition's array (no batch axes), used for shapes/dtypes."""
    data = {k: jnp.zeros((rows_per_env, num_envs) + v.shape, v.dtype) for k, v in example.items()}
    return BufferState(data=data, total_rows=jnp.zeros((), jnp.int32))


def add(state: BufferState, chunk: dict[str, jax.Array]) -> BufferState:
    """Append an unroll. chunk: field -> [U, num_envs, ...] (U consecutive env steps of every env).

    Rows are scattered to `(total + arange(U)) mod rows_per_env`, so U need not divide the capacity.
    """
    u = next(iter(chunk.values())).shape[0]
    rows = next(iter(state.data.values())).shape[0]
    idx = (state.total_rows + jnp.arange(u)) % rows
    data = {k: state.data[k].at[idx].set(chunk[k]) for k in state.data}
    return BufferState(data=data, total_rows=state.total_rows + u)


def num_sampleable(state: BufferState, episode_length: int) -> jax.Array:
    """Number of rows (per env) that have a future row of the same episode in the buffer."""
    oldest, end = _valid_range(state)
    return _count_valid_below(end, episode_length) - _count_valid_below(oldest, episode_length)


def _valid_range(state: BufferState) -> tuple[jax.Array, jax.Array]:
    rows = next(iter(state.data.values())).shape[0]
    oldest = jnp.maximum(state.total_rows - rows, 0)
    end = jnp.maximum(state.total_rows - 1, 0)  # the newest row has no written successor yet
    return oldest, end


def _count_valid_below(x: jax.Array, episode_length: int) -> jax.Array:
    # rows l < x whose step l mod L is not the episode's last (L − 1)
    return x - x // episode_length


def _nth_valid_row(n: jax.Array, episode_length: int) -> jax.Array:
    # inverse of _count_valid_below: skip one row after every L − 1 valid rows
    return n + n // (episode_length - 1)


def truncated_geometric(key: jax.Array, gamma: float, max_offset: jax.Array) -> jax.Array:
    """k in {1..max_offset} with P(k) ∝ γ^(k−1), by inverting the CDF (1 − γ^k) / (1 − γ^R). [...]->[...]"""
    u = jax.random.uniform(key, max_offset.shape)
    mass = 1.0 - jnp.power(gamma, max_offset.astype(jnp.float32))
    k = jnp.ceil(jnp.log1p(-u * mass) / jnp.log(gamma))
    return jnp.clip(k, 1, max_offset).astype(jnp.int32)


def sample_with_future(
    state: BufferState, key: jax.Array, batch_size: int, episode_length: int, gamma: float
) -> tuple[dict[str, jax.Array], dict[str, jax.Array], dict[str, jax.Array], jax.Array]:
    """Sample (row, future row) pairs. Requires num_sampleable(state) > 0.

    Returns (current, following, future, offsets): each of current/following/future maps field ->
    [batch_size, ...]: the row, the next row (same episode, so (current, following) is a transition) and
    the relabelled future row of the same env and episode; offsets [batch_size] int32 (k ≥ 1).
    """
    rows = next(iter(state.data.values())).shape[0]
    num_envs = next(iter(state.data.values())).shape[1]
    env_key, row_key, offset_key = jax.random.split(key, 3)
    env = jax.random.randint(env_key, (batch_size,), 0, num_envs)
    oldest, end = _valid_range(state)
    lo = _count_valid_below(oldest, episode_length)
    hi = _count_valid_below(end, episode_length)
    n = jax.random.randint(row_key, (batch_size,), lo, jnp.maximum(hi, lo + 1))
    row = _nth_valid_row(n, episode_length)
    steps_left_in_episode = episode_length - 1 - row % episode_length
    max_offset = jnp.maximum(jnp.minimum(steps_left_in_episode, end - row), 1)
    offsets = truncated_geometric(offset_key, gamma, max_offset)
    future_row = row + offsets
    current = {k: v[row % rows, env] for k, v in state.data.items()}
    following = {k: v[(row + 1) % rows, env] for k, v in state.data.items()}
    future = {k: v[future_row % rows, env] for k, v in state.data.items()}
    return current, following, future, offsets


def transition_example(state_dim: int, action_dim: int) -> dict[str, Any]:
    """The fields CRL stores per env step: the env state (not the goal) and the action taken."""
    return {"state": jnp.zeros((state_dim,), jnp.float32), "action": jnp.zeros((action_dim,), jnp.float32)}
