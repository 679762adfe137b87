"""gymnax environments (classic control, MinAtar) behind depthrl's env contract.

gymnax (Lange 2022) implements CartPole, Acrobot, MountainCar and the MinAtar games as pure JAX
functions, so they jit, vmap and scan like the embedded envs; we adapt them instead of rewriting them.

`GymnaxEnv(name)` is one env: `reset(key) -> State`, `step(state, action) -> State`, vmappable. gymnax
auto-resets on the step that ends an episode; the adapter keeps that and reports how it ended:

    obs    [obs_dim] float32, the observation flattened (MinAtar's [10, 10, C] grids become 100·C vectors);
           after an episode end it is already the next episode's first observation.
    done   [] float32, 1 when the episode ended on this step (by termination or by the time limit).
    info   terminated [] float32: the episode reached a terminal state (do not bootstrap);
           truncated  [] float32: the time limit ended it, not a terminal state (bootstrap from final_obs);
           final_obs  [obs_dim]: the observation the step reached, before the auto-reset
                      (= obs on steps that did not end an episode).

Episode returns and lengths come from `depthrl.envs.episodic.EpisodeReturnWrapper`, which the registry
adds. gymnax itself is imported on first use only (its import takes seconds).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from depthrl.envs.base import EnvSpec, State


class GymnaxEntry(NamedTuple):
    gymnax_id: str
    obs_dim: int
    num_actions: int
    episode_length: int  # gymnax's default time limit
    description: str


# depthrl name -> gymnax env (dims are checked against gymnax in tests/envs/test_gymnax_envs.py, so that
# `depthrl envs` can list them without importing gymnax).
GYMNAX_ENVS: dict[str, GymnaxEntry] = {
    "cartpole": GymnaxEntry("CartPole-v1", 4, 2, 500,
                            "gymnax CartPole-v1: keep the pole up, +1 per step, at most 500 steps."),
    "acrobot": GymnaxEntry("Acrobot-v1", 6, 3, 500,
                           "gymnax Acrobot-v1: swing the tip above the bar, −1 per step until then."),
    "mountain-car": GymnaxEntry("MountainCar-v0", 2, 3, 200,
                                "gymnax MountainCar-v0: drive up the hill, −1 per step (sparse, hard)."),
    "minatar-asterix": GymnaxEntry("Asterix-MinAtar", 400, 5, 1000, "gymnax MinAtar Asterix (10x10x4 grid)."),
    "minatar-breakout": GymnaxEntry("Breakout-MinAtar", 400, 3, 1000, "gymnax MinAtar Breakout (10x10x4 grid)."),
    "minatar-freeway": GymnaxEntry("Freeway-MinAtar", 700, 3, 2500, "gymnax MinAtar Freeway (10x10x7 grid)."),
    "minatar-space-invaders": GymnaxEntry("SpaceInvaders-MinAtar", 600, 4, 1000,
                                          "gymnax MinAtar Space Invaders (10x10x6 grid)."),
}


@functools.cache
def _gymnax_env(gymnax_id: str) -> tuple[Any, Any]:
    """The cached gymnax env and params. Built under `ensure_compile_time_eval`: gymnax envs create jnp arrays
    in their constructor, and a first call inside a jit trace would otherwise cache tracers that leak into
    every later use."""
    import gymnax

    with jax.ensure_compile_time_eval():
        return gymnax.make(gymnax_id)


@dataclasses.dataclass(frozen=True)
class GymnaxEnv:
    """One gymnax env with discrete actions. Hashable; `episode_length` overrides gymnax's time limit."""

    name: str
    episode_length: int | None = None

    @property
    def entry(self) -> GymnaxEntry:
        return GYMNAX_ENVS[self.name]

    @property
    def max_steps(self) -> int:
        return self.episode_length or self.entry.episode_length

    @property
    def spec(self) -> EnvSpec:
        entry = self.entry
        return EnvSpec(name=self.name, obs_dim=entry.obs_dim, action_dim=1, state_dim=entry.obs_dim,
                       goal_indices=(), episode_length=self.max_steps, action_low=0.0,
                       action_high=float(entry.num_actions - 1), discrete_actions=entry.num_actions)

    def _env_and_params(self):
        env, params = _gymnax_env(self.entry.gymnax_id)
        return env, params.replace(max_steps_in_episode=self.max_steps)

    def reset(self, key: jax.Array) -> State:
        env, params = self._env_and_params()
        key, reset_key = jax.random.split(key)
        obs, env_state = env.reset(reset_key, params)
        obs = _flat(obs)
        zero = jnp.zeros((), jnp.float32)
        info = {"terminated": zero, "truncated": zero, "final_obs": obs}
        return State(obs=obs, reward=zero, done=zero, info=info, physics={"env": env_state, "key": key})

    def step(self, state: State, action: jax.Array) -> State:
        """action: [] or [1] integer index (a float is rounded, so a batch of [N, 1] float actions works)."""
        env, params = self._env_and_params()
        key, step_key = jax.random.split(state.physics["key"])
        action = jnp.reshape(action, ())
        if not jnp.issubdtype(action.dtype, jnp.integer):
            action = jnp.round(action)
        action = jnp.clip(action.astype(jnp.int32), 0, self.entry.num_actions - 1)
        obs, env_state, reward, terminated, truncated, info = env.step(step_key, state.physics["env"], action,
                                                                       params)
        terminated = jnp.asarray(terminated, bool)
        truncated = jnp.logical_and(jnp.asarray(truncated, bool), jnp.logical_not(terminated))
        info = {"terminated": terminated.astype(jnp.float32), "truncated": truncated.astype(jnp.float32),
                "final_obs": _flat(info["final_observation"])}
        done = jnp.logical_or(terminated, truncated).astype(jnp.float32)
        return State(obs=_flat(obs), reward=jnp.asarray(reward, jnp.float32), done=done, info=info,
                     physics={"env": env_state, "key": key})


def _flat(obs: jax.Array) -> jax.Array:
    return jnp.reshape(obs, (-1,)).astype(jnp.float32)
