"""Evaluation on reward-driven envs whose episodes end early (gymnax, probes): shared by the DQN and PPO loops.

Each of `num_eval_envs` envs runs from reset with the deterministic policy until its first episode ends;
its return and length (`EpisodeReturnWrapper`'s `episode_metrics`) are that env's result. The scan runs
`spec.episode_length` steps, the time limit, so every env finishes exactly one episode or more.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp


def evaluate_returns(env: Any, act: Callable[[Any, jax.Array, jax.Array, bool], jax.Array], params: Any,
                     key: jax.Array, num_envs: int) -> dict[str, jax.Array]:
    """name -> [num_envs] metrics of each env's first episode (`return`, `length`) under act(..., True)."""
    reset_key, act_key = jax.random.split(key)
    state = jax.vmap(env.reset)(jax.random.split(reset_key, num_envs))
    step_fn = jax.vmap(env.step)
    finished = jnp.zeros((num_envs,), bool)
    first = state.info["episode_metrics"]

    def one_step(carry, _):
        env_state, first, finished = carry
        action = act(params, env_state.obs, act_key, True)
        next_state = step_fn(env_state, action)
        ended = next_state.done > 0
        newly = ended & ~finished
        first = jax.tree.map(lambda old, new: jnp.where(newly, new, old), first, next_state.info["episode_metrics"])
        return (next_state, first, finished | ended), None

    (_, first, _), _ = jax.lax.scan(one_step, (state, first, finished), None, length=env.spec.episode_length)
    return first
