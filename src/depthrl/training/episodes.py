"""Evaluation by first episodes: each of `num_eval_envs` envs runs from reset with the deterministic policy
until its first episode ends, and that episode's `episode_metrics` are the env's result (return and
length of `EpisodeReturnWrapper` for DQN and PPO; the goal metrics of `EpisodeWrapper` for the goal-
conditioned loop, whose episodes may end early too). The scan runs `spec.episode_length` steps, the time
limit, so every env finishes exactly one episode or more.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp


def first_episodes(step_fn: Callable[[Any, jax.Array], Any], act: Callable[[Any], jax.Array], state: Any,
                   num_steps: int, trace: Callable[[Any], Any] | None = None) -> tuple[dict[str, jax.Array], Any]:
    """Step a batch of envs `num_steps` times with `act(state) -> actions` from `state`.

    Returns (name -> [num_envs] the `episode_metrics` of each env's first finished episode, the stacked
    per-step `trace(state)` of the states acted on, or None). Envs whose first episode has not ended report
    the zeros of `reset`; a scan of the time limit's length ends every env's first episode.
    """
    finished = jnp.zeros(state.done.shape, bool)
    first = state.info["episode_metrics"]

    def one_step(carry, _):
        env_state, first, finished = carry
        next_state = step_fn(env_state, act(env_state))
        ended = next_state.done > 0
        newly = ended & ~finished
        first = jax.tree.map(lambda old, new: jnp.where(newly, new, old), first, next_state.info["episode_metrics"])
        return (next_state, first, finished | ended), (trace(env_state) if trace is not None else None)

    (_, first, _), traced = jax.lax.scan(one_step, (state, first, finished), None, length=num_steps)
    return first, traced


def evaluate_returns(env: Any, act: Callable[[Any, jax.Array, jax.Array, bool], jax.Array], params: Any,
                     key: jax.Array, num_envs: int) -> dict[str, jax.Array]:
    """name -> [num_envs] metrics of each env's first episode (`return`, `length`) under act(..., True)."""
    reset_key, act_key = jax.random.split(key)
    state = jax.vmap(env.reset)(jax.random.split(reset_key, num_envs))
    first, _ = first_episodes(jax.vmap(env.step), lambda s: act(params, s.obs, act_key, True), state,
                              env.spec.episode_length)
    return first
