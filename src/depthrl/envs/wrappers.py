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

EPISODE_METRICS = ("success", "time_at_goal", "final_distance", "steps_at_goal", "episode_length")


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
    """Episodes of at most `episode_length` steps with auto-reset, deterministic from the key(s) given to
    `reset`.

    The wrapped env (one env or a `VmapWrapper` batch) must report `info["at_goal"]` and
    `info["distance"]` (goal envs do), and may end an episode early by returning `done = 1` from its step
    (early termination: a fallen Ant or Humanoid; envs that never terminate keep `done = 0`). An episode
    ends on its `episode_length`-th step or on an early termination; on that step `done = 1.0`, the env has
    already reset (the obs is the next episode's first obs, drawn from a key carried in `physics["key"]`),
    while `reward`, `distance` and `at_goal` still describe the step's outcome before the reset. Without
    early terminations, envs started together stay synchronised.

    resample: True draws each new episode's start and goal from a fresh key; False resets every episode
    to the env's first state (the same start, goal and start noise for the whole run), as the auto-reset of
    brax 0.10 that the paper's code uses restores each env's first state.

    info keys added:
      episode_step:    int32, index of the current obs within its episode (0 right after a reset).
      truncated:       float, 1 where the time limit ended the episode (bootstrap through it); an early
                       termination has done = 1 and truncated = 0.
      episode_metrics: dict of the last finished episode (valid where done == 1; zeros before the first):
                       success (1.0 if at goal at any step), steps_at_goal (steps of the episode that ended
                       at the goal, the paper's `episode_success` count), time_at_goal (steps_at_goal out of
                       `episode_length`, the paper's headline metric as a fraction: steps after an early
                       termination count as not at goal), final_distance (distance after its last step),
                       episode_length (its steps: `episode_length` unless it terminated early).
      episode_running: dict of the current episode so far: steps_at_goal (count), success (0/1).
    """

    env: Env
    episode_length: int
    resample: bool = True

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
        # without resampling the carried key is the one this reset used, so every auto-reset repeats it
        physics = {"env": state.physics, "key": key if self.resample else env_key}
        return state.replace(done=zero, info=info, physics=physics)

    def step(self, state: State, action: jax.Array) -> State:
        inner = self.env.step(state.replace(physics=state.physics["env"]), action)
        at_goal = inner.info["at_goal"]
        running = state.info["episode_running"]
        steps_at_goal = running["steps_at_goal"] + at_goal
        success = jnp.maximum(running["success"], at_goal)
        next_step = state.info["episode_step"] + 1
        time_up = next_step >= self.episode_length
        done = time_up | (inner.done > 0)

        def auto_reset(_):
            if self.resample:
                key, reset_key = _split(state.physics["key"])
            else:
                key = reset_key = state.physics["key"]
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
            "steps_at_goal": steps_at_goal,
            "episode_length": next_step.astype(jnp.float32),
        }
        donef = done.astype(jnp.float32)
        info = {
            **inner.info,
            "episode_step": jnp.where(done, 0, next_step).astype(jnp.int32),
            "truncated": (time_up & (inner.done <= 0)).astype(jnp.float32),
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
