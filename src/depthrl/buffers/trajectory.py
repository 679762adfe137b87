"""Trajectory replay for goal-conditioned agents, as pure functions over a pytree state (flashbax style).

Layout: `data[field]` has shape [rows_per_env, num_envs, ...]: row r of column e is one env step of env e,
written as a ring. `add` also receives each step's `done` (the step ended its episode: time limit or early
termination), so episodes may have any length and need not be aligned across envs. A row *continues* its
episode when its step did not end it; such a row has a successor of the same episode (once written).

Sampling is O(1) per sample, whatever the episode lengths (no T × T matrix; the reference code builds one
per trajectory: O(T²)). Three int32 rings per env, written by `add` in O(1) per row, make it so:

  continue_below[r]  number of continuing rows among the env's logical rows < r (stored at row r),
  continuing[j]      logical row of the env's j-th continuing row,
  episode_end[k]     logical row of the env's k-th episode-ending row.

  * the env is uniform, then the row uniform among the env's rows in the buffer that have a written
    successor of the same episode: the n-th continuing row, n uniform in [continue_below[oldest],
    continue_below[newest]) (the newest row has no written successor yet);
  * the row's episode ends at episode_end[k] with k = r − continue_below[r] (the episode-ending rows before
    r), or is still running (then the newest row bounds it);
  * its goal is the state `k` rows later, k ~ geometric(1 − γ) truncated to the rows left in the episode
    (P(k) ∝ γ^(k−1) for k = 1..R, as the paper's code renormalises the discounted future mask).

The rings have one slot per row: the episodes and continuing rows that still have a row in the buffer never
number more than the rows, so no live slot is overwritten. With fixed-length episodes that start at logical
row 0 (the point mazes), the counts equal the closed forms `x − x // L` and their inverse, so the draws are
those of the fixed-length sampler this one replaced.
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
    continue_below: jax.Array  # [rows_per_env, num_envs] int32, by row slot (see the module docstring)
    continuing: jax.Array  # [rows_per_env, num_envs] int32, by continuing-row count mod rows_per_env
    episode_end: jax.Array  # [rows_per_env, num_envs] int32, by episode-end count mod rows_per_env
    num_continuing: jax.Array  # [num_envs] int32: continuing rows written per env


def init(example: dict[str, jax.Array], rows_per_env: int, num_envs: int) -> BufferState:
    """Empty buffer. example: field -> one transition's array (no batch axes), used for shapes/dtypes."""
    data = {k: jnp.zeros((rows_per_env, num_envs) + v.shape, v.dtype) for k, v in example.items()}
    ring = jnp.zeros((rows_per_env, num_envs), jnp.int32)
    return BufferState(data=data, total_rows=jnp.zeros((), jnp.int32), continue_below=ring, continuing=ring,
                       episode_end=ring, num_continuing=jnp.zeros((num_envs,), jnp.int32))


def add(state: BufferState, chunk: dict[str, jax.Array], done: jax.Array) -> BufferState:
    """Append an unroll. chunk: field -> [U, num_envs, ...] (U consecutive env steps of every env); done:
    [U, num_envs], nonzero where that step ended its episode (the next row starts a new one).

    Rows are scattered to `(total + arange(U)) mod rows_per_env`, so U need not divide the capacity (U must
    not exceed it).
    """
    u = next(iter(chunk.values())).shape[0]
    rows, num_envs = state.continue_below.shape
    logical = state.total_rows + jnp.arange(u)  # [U]
    idx = logical % rows
    data = {k: state.data[k].at[idx].set(chunk[k]) for k in state.data}
    continues = (done == 0).astype(jnp.int32)  # [U, N]
    below = state.num_continuing[None] + jnp.cumsum(continues, axis=0) - continues  # exclusive count
    ends_below = logical[:, None] - below
    env = jnp.broadcast_to(jnp.arange(num_envs)[None], (u, num_envs))
    row = jnp.broadcast_to(logical[:, None], (u, num_envs))
    # each row goes to one of the two lists; the other gets an out-of-range slot, which `drop` ignores
    continuing = state.continuing.at[jnp.where(continues == 1, below % rows, rows), env].set(row, mode="drop")
    episode_end = state.episode_end.at[jnp.where(continues == 0, ends_below % rows, rows), env].set(
        row, mode="drop")
    return BufferState(data=data, total_rows=state.total_rows + u,
                       continue_below=state.continue_below.at[idx].set(below), continuing=continuing,
                       episode_end=episode_end, num_continuing=state.num_continuing + continues.sum(0))


def _valid_range(state: BufferState) -> tuple[jax.Array, jax.Array]:
    rows = state.continue_below.shape[0]
    oldest = jnp.maximum(state.total_rows - rows, 0)
    newest = jnp.maximum(state.total_rows - 1, 0)  # the newest row has no written successor yet
    return oldest, newest


def _sampleable_range(state: BufferState, env: jax.Array) -> tuple[jax.Array, jax.Array]:
    """[lo, hi): the counts of the continuing rows of `env` that have a written successor in the buffer."""
    rows = state.continue_below.shape[0]
    oldest, newest = _valid_range(state)
    return state.continue_below[oldest % rows, env], state.continue_below[newest % rows, env]


def num_sampleable(state: BufferState) -> jax.Array:
    """[num_envs] rows per env that have a successor of the same episode in the buffer."""
    lo, hi = _sampleable_range(state, jnp.arange(state.continue_below.shape[1]))
    return hi - lo


def truncated_geometric(key: jax.Array, gamma: float, max_offset: jax.Array) -> jax.Array:
    """k in {1..max_offset} with P(k) ∝ γ^(k−1), by inverting the CDF (1 − γ^k) / (1 − γ^R). [...]->[...]"""
    u = jax.random.uniform(key, max_offset.shape)
    mass = 1.0 - jnp.power(gamma, max_offset.astype(jnp.float32))
    k = jnp.ceil(jnp.log1p(-u * mass) / jnp.log(gamma))
    return jnp.clip(k, 1, max_offset).astype(jnp.int32)


def episode_last_row(state: BufferState, row: jax.Array, env: jax.Array) -> jax.Array:
    """Logical row of the last written row of the episode holding logical `row` of `env` (its ending row,
    or the newest row while the episode runs). row must be in the buffer. [...] -> [...]"""
    rows = state.continue_below.shape[0]
    ends_before = row - state.continue_below[row % rows, env]
    finished = ends_before < state.total_rows - state.num_continuing[env]
    return jnp.where(finished, state.episode_end[ends_before % rows, env], _valid_range(state)[1])


def sample_with_future(
    state: BufferState, key: jax.Array, batch_size: int, gamma: float
) -> tuple[dict[str, jax.Array], dict[str, jax.Array], dict[str, jax.Array], jax.Array]:
    """Sample (row, future row) pairs. Requires num_sampleable(state) > 0 for every env.

    Returns (current, following, future, offsets): each of current/following/future maps field ->
    [batch_size, ...]: the row, the next row (same episode, so (current, following) is a transition) and
    the relabelled future row of the same env and episode; offsets [batch_size] int32 (k ≥ 1).
    """
    rows, num_envs = state.continue_below.shape
    env_key, row_key, offset_key = jax.random.split(key, 3)
    env = jax.random.randint(env_key, (batch_size,), 0, num_envs)
    lo, hi = _sampleable_range(state, env)
    n = jax.random.randint(row_key, (batch_size,), lo, jnp.maximum(hi, lo + 1))
    row = state.continuing[n % rows, env]
    max_offset = jnp.maximum(episode_last_row(state, row, env) - row, 1)
    offsets = truncated_geometric(offset_key, gamma, max_offset)
    future_row = row + offsets
    current = {k: v[row % rows, env] for k, v in state.data.items()}
    following = {k: v[(row + 1) % rows, env] for k, v in state.data.items()}
    future = {k: v[future_row % rows, env] for k, v in state.data.items()}
    return current, following, future, offsets


def transition_example(state_dim: int, action_dim: int) -> dict[str, Any]:
    """The fields CRL stores per env step: the env state (not the goal) and the action taken."""
    return {"state": jnp.zeros((state_dim,), jnp.float32), "action": jnp.zeros((action_dim,), jnp.float32)}
