"""Acting in a batch of envs: the one rollout every training loop collects with, and the one evaluation.

`rollout` is the env scan of every loop (scan over env steps, the envs batched by vmap): the caller says
how actions are chosen (`policy`) and what each step keeps (`record`), so the same scan yields CRL's
trajectories, the flat transitions of SAC/TD3/DQN's replay or PPO's on-policy rollout. `evaluate` runs
fresh envs until each finishes its first episode under a deterministic policy and reports that episode's
metrics (goal metrics of `EpisodeWrapper` for the goal envs; return and length of `EpisodeReturnWrapper`
for the reward envs). Both are pure and jittable, and vmap over seeds.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from depthrl.envs.base import EnvSpec, State

# policy(obs [N, O], key) -> actions [N, ...]; record(state, action, next_state) -> one step's pytree [N, ...]
Policy = Callable[[jax.Array, jax.Array], jax.Array]
Record = Callable[[State, jax.Array, State], Any]


def uniform_actions(spec: EnvSpec, key: jax.Array, num_envs: int) -> jax.Array:
    """Uniform random actions: [num_envs] int32 (discrete) or [num_envs, action_dim] within the bounds."""
    if spec.discrete_actions:
        return jax.random.randint(key, (num_envs,), 0, spec.discrete_actions)
    return jax.random.uniform(key, (num_envs, spec.action_dim), minval=spec.action_low, maxval=spec.action_high)


def reset_envs(env: Any, key: jax.Array, num_envs: int) -> State:
    """`num_envs` envs reset from keys split from `key`: the state batched over envs [num_envs, ...]."""
    return jax.vmap(env.reset)(jax.random.split(key, num_envs))


def episode_means(done: jax.Array, episode_metrics: dict[str, jax.Array]) -> dict[str, jax.Array]:
    """`train/NAME`: the mean of each episode metric over the episodes that ended in an unroll (done [U, N]),
    and `train/episodes`: how many ended."""
    count = jnp.sum(done)
    out = {f"train/{k}": jnp.sum(v * done) / jnp.maximum(count, 1.0) for k, v in episode_metrics.items()}
    out["train/episodes"] = count
    return out


def rollout(env: Any, policy: Policy, record: Record, env_state: State, key: jax.Array,
            num_steps: int) -> tuple[State, Any, dict[str, jax.Array]]:
    """Step a batch of envs (`env_state` has a leading env axis N) `num_steps` times.

    Each step draws actions with `policy(obs, step_key)` (one key per step, split from `key`) and keeps
    `record(state, action, next_state)`. Returns (the env state after the last step, the records stacked
    over steps: [num_steps, N, ...], `episode_means` of the episodes that ended).
    """
    step_fn = jax.vmap(env.step)

    def one_step(state: State, step_key: jax.Array):
        action = policy(state.obs, step_key)
        next_state = step_fn(state, action)
        return next_state, (record(state, action, next_state), next_state.done, next_state.info["episode_metrics"])

    env_state, (steps, done, episode_metrics) = jax.lax.scan(one_step, env_state,
                                                             jax.random.split(key, num_steps))
    return env_state, steps, episode_means(done, episode_metrics)


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


def evaluate(env: Any, act: Callable[[Any, jax.Array, jax.Array, bool], jax.Array], params: Any, key: jax.Array,
             num_envs: int, trace: Callable[[State], Any] | None = None) -> tuple[dict[str, jax.Array], Any, State]:
    """`num_envs` envs reset from `key`, each run by `act(params, obs, key, deterministic=True)` until its first
    episode ends (the scan runs the time limit, `spec.episode_length` steps; later episodes do not count).

    Returns (name -> [num_envs] the metrics of each env's first episode, the stacked `trace(state)` of every
    step acted on [T, num_envs, ...] or None, the reset state [num_envs, ...]).
    """
    state = reset_envs(env, key, num_envs)
    first, traced = first_episodes(jax.vmap(env.step), lambda s: act(params, s.obs, key, True), state,
                                   env.spec.episode_length, trace)
    return first, traced, state
