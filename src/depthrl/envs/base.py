"""The environment contract: functional, jittable, vmappable.

`reset(key) -> State` and `step(state, action) -> State`. Goal-conditioned envs expose `state_dim` and
`goal_indices` through their `EnvSpec`, and `obs = concat(state, goal)`.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Protocol

import jax
from flax import struct


@struct.dataclass
class State:
    """One env's (or a batch of envs') state. Leading batch axes are added by vmap.

    obs:    [obs_dim] observation = concat(state[:state_dim], goal).
    reward: [] float32.
    done:   [] float32, 1.0 on the step that ended an episode (the env has already auto-reset when a
            wrapper provides auto-reset; `obs` is then the first observation of the next episode).
    info:   dict of per-step metrics and bookkeeping (arrays), see each env / wrapper.
    physics: env-specific internal state (pytree).
    """

    obs: jax.Array
    reward: jax.Array
    done: jax.Array
    info: dict[str, Any]
    physics: Any


@dataclasses.dataclass(frozen=True)
class EnvSpec:
    """Static description of an env's shapes and bounds."""

    name: str
    obs_dim: int
    action_dim: int
    state_dim: int
    goal_indices: tuple[int, ...]
    episode_length: int
    action_low: float = -1.0
    action_high: float = 1.0
    discrete_actions: int = 0  # > 0 for discrete-action envs: number of actions
    success_radius: float = 0.5  # goal envs: distance within which the state is at the goal (reward 1)

    @property
    def goal_dim(self) -> int:
        return len(self.goal_indices)


class Env(Protocol):
    spec: EnvSpec

    def reset(self, key: jax.Array) -> State: ...

    def step(self, state: State, action: jax.Array) -> State: ...
