"""Wrappers: a time limit with auto-reset and episode metrics, and a batch (vmap) wrapper.

Two equivalent ways to run N envs (every leaf of the state gains a leading axis N):
  env = EpisodeWrapper(PointMaze("u"), 100)                   # what `registry.make_envs` returns
  state = jax.vmap(env.reset)(keys); state = jax.vmap(env.step)(state, actions)
or
  env = EpisodeWrapper(VmapWrapper(PointMaze("u")), 100)      # `registry.batched_envs`
  state = env.reset(keys); state = env.step(state, actions)

`EpisodeWrapper` works on one env or on a batch, with identical results. Wrapping the batch lets it
compute the auto-reset only on steps where some episode ends (a `lax.cond` on `any(done)`): with
synchronised episodes that is one reset per episode instead of one per step (vmap turns the cond of a
per-env wrapper into a select, which computes the reset every step).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp

from depthrl.envs.base import Env, EnvSpec, State

EPISODE_METRICS = ("success", "time_at_goal", "final_distance")


def _split(key: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Split a key or a batch of keys (raw uint32 [..., 2] or typed [...]) into (next, sub)."""
    raw = not jnp.issubdtype(key.dtype, jax.dtypes.prng_key)
    batch = key.shape[:-1] if raw else key.shape
    flat = key.reshape((-1,) + key.shape[len(batch) :])
    pairs = jax.vmap(jax.random.split)(flat)  # [B, 2, ...]
    return pairs[:, 0].reshape(key.shape), pairs[:, 1].reshape(key.shape)


def _where(done: jax.Array, new: jax.Array, old: jax.Array) -> jax.Array:
    """Per-env select; `done` has the batch shape, the leaves may have trailing axes."""
    return jnp.where(done.reshape(done.shape + (1,) * (new.ndim - done.ndim)), new, old)


@dataclasses.dataclass(frozen=True)
class EpisodeWrapper:
    """Fixed-length episodes with auto-reset, deterministic from the key(s) given to `reset`.

    The wrapped env (one env or a `VmapWrapper` batch) must report `info["at_goal"]` and
    `info["distance"]` (goal envs do). An episode is `episode_length` steps; on its last step
    `done = 1.0`, the env has already reset (the obs is the next episode's first obs, drawn from a key
    carried in `physics["key"]`), while `reward`, `distance` and `at_goal` still describe the step's
    outcome before the reset. Episodes never end early, so envs started together stay synchronised
    (the CRL buffer relies on it).

    info keys added:
      episode_step:    int32, index of the current obs within its episode (0 right after a reset).
      truncated:       float, equal to `done` (every episode end is a time limit; bootstrap through it).
      episode_metrics: dict of the last finished episode (valid where done == 1; zeros before the first):
                       success (1.0 if at goal at any step), time_at_goal (fraction of the episode's steps
                       at goal, the paper's headline metric), final_distance (distance after its last step).
      episode_running: dict of the current episode so far: steps_at_goal (count), success (0/1).
    """

    env: Env
    episode_length: int

    @property
    def spec(self) -> EnvSpec:
        return dataclasses.replace(self.env.spec, episode_length=self.episode_length)

    def reset(self, key: jax.Array) -> State:
        key, env_key = _split(key)
        state = self.env.reset(env_key)
        zero = jnp.zeros_like(state.reward, dtype=jnp.float32)
        info = {
            **state.info,
            "episode_step": jnp.zeros_like(state.reward, dtype=jnp.int32),
            "truncated": zero,
            "episode_metrics": {name: zero for name in EPISODE_METRICS},
            "episode_running": {"steps_at_goal": zero, "success": zero},
        }
        return state.replace(done=zero, info=info, physics={"env": state.physics, "key": key})

    def step(self, state: State, action: jax.Array) -> State:
        inner = self.env.step(state.replace(physics=state.physics["env"]), action)
        at_goal = inner.info["at_goal"]
        running = state.info["episode_running"]
        steps_at_goal = running["steps_at_goal"] + at_goal
        success = jnp.maximum(running["success"], at_goal)
        next_step = state.info["episode_step"] + 1
        done = next_step >= self.episode_length

        def auto_reset(_):
            key, reset_key = _split(state.physics["key"])
            fresh = self.env.reset(reset_key)
            pick = lambda new, old: _where(done, new, old)
            env_physics = jax.tree.map(pick, fresh.physics, inner.physics)
            return pick(fresh.obs, inner.obs), env_physics, pick(key, state.physics["key"])

        keep = lambda _: (inner.obs, inner.physics, state.physics["key"])
        obs, env_physics, key = jax.lax.cond(jnp.any(done), auto_reset, keep, None)
        finished = {
            "success": success,
            "time_at_goal": steps_at_goal / self.episode_length,
            "final_distance": inner.info["distance"],
        }
        donef = done.astype(jnp.float32)
        info = {
            **inner.info,
            "episode_step": jnp.where(done, 0, next_step).astype(jnp.int32),
            "truncated": donef,
            "episode_metrics": jax.tree.map(
                lambda new, old: jnp.where(done, new, old), finished, state.info["episode_metrics"]
            ),
            "episode_running": {
                "steps_at_goal": steps_at_goal * (1 - donef),
                "success": success * (1 - donef),
            },
        }
        physics = {"env": env_physics, "key": key}
        return State(obs=obs, reward=inner.reward, done=donef, info=info, physics=physics)


@dataclasses.dataclass(frozen=True)
class VmapWrapper:
    """A batch of independent envs: `reset(keys [N, ...])`, `step(state, actions [N, action_dim])`."""

    env: Env

    @property
    def spec(self) -> EnvSpec:
        return self.env.spec

    def reset(self, keys: jax.Array) -> State:
        return jax.vmap(self.env.reset)(keys)

    def step(self, state: State, actions: jax.Array) -> State:
        return jax.vmap(self.env.step)(state, actions)


def unwrapped(env: Any) -> Any:
    """The innermost env under any number of wrappers."""
    while hasattr(env, "env"):
        env = env.env
    return env
