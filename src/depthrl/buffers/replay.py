"""One protocol for every replay: `Replay`, four pure functions on a pytree buffer state.

  record(state, action, next_state) -> what one env step stores (batched over envs; `training.acting.rollout`
                                       stacks it over the steps of an unroll),
  init() -> the empty buffer state,
  add(buffer, steps) -> the buffer with an unroll appended (steps: the records [U, N, ...]),
  sample(buffer, key) -> one training batch (field -> [B, ...]).

Two replays implement it: `TrajectoryReplay` (`buffers.trajectory`: whole episodes per env, batches
relabelled with a future goal of the same episode: CRL, SAC/TD3 + HER) and `TransitionReplay`
(`buffers.transitions`: flat transitions, uniform batches: DQN). Each is a frozen dataclass of static
sizes, so it is hashable and a jitted loop holding one recompiles only when a size changes.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Protocol

import jax
import jax.numpy as jnp

from depthrl.buffers import trajectory, transitions
from depthrl.envs.base import EnvSpec, State


class Replay(Protocol):
    def record(self, state: State, action: jax.Array, next_state: State) -> dict[str, jax.Array]: ...

    def init(self) -> Any: ...

    def add(self, buffer: Any, steps: dict[str, jax.Array]) -> Any: ...

    def sample(self, buffer: Any, key: jax.Array) -> dict[str, jax.Array]: ...


@dataclasses.dataclass(frozen=True)
class TrajectoryReplay:
    """Episodes of every env in a `buffers.trajectory` ring of `rows_per_env` rows per env. A batch is
    state, action, next_state [B, ...] (a transition of one episode) and goal [B, goal_dim]: the goal
    coordinates of a future state of the same episode (hindsight relabelling, geometric offset with
    parameter `discount`)."""

    state_dim: int
    action_dim: int
    goal_indices: tuple[int, ...]
    num_envs: int
    rows_per_env: int
    batch_size: int
    discount: float

    @classmethod
    def of(cls, spec: EnvSpec, num_envs: int, rows_per_env: int, batch_size: int, discount: float) -> TrajectoryReplay:
        return cls(spec.state_dim, spec.action_dim, tuple(spec.goal_indices), num_envs, rows_per_env, batch_size,
                   discount)

    def record(self, state: State, action: jax.Array, next_state: State) -> dict[str, jax.Array]:
        """The env state (not the goal), the action and whether the step ended its episode."""
        return {"state": state.obs[:, : self.state_dim], "action": action, "done": next_state.done}

    def init(self) -> trajectory.BufferState:
        return trajectory.init(trajectory.transition_example(self.state_dim, self.action_dim), self.rows_per_env,
                               self.num_envs)

    def add(self, buffer: trajectory.BufferState, steps: dict[str, jax.Array]) -> trajectory.BufferState:
        return trajectory.add(buffer, {"state": steps["state"], "action": steps["action"]}, steps["done"])

    def sample(self, buffer: trajectory.BufferState, key: jax.Array) -> dict[str, jax.Array]:
        current, following, future, _ = trajectory.sample_with_future(buffer, key, self.batch_size, self.discount)
        return {"state": current["state"], "action": current["action"], "next_state": following["state"],
                "goal": future["state"][:, jnp.asarray(self.goal_indices)]}


@dataclasses.dataclass(frozen=True)
class TransitionReplay:
    """Flat transitions {obs, action, reward, next_obs, terminated} in a `buffers.transitions` ring of
    `capacity` entries, for envs whose episodes end whenever the env says: next_obs is the observation before
    the auto-reset (`info["final_obs"]`, so a time-limit end bootstraps) and terminated comes from the env.
    A batch is `batch_size` transitions drawn uniformly."""

    obs_dim: int
    action_dim: int
    discrete_actions: int
    capacity: int
    batch_size: int

    @classmethod
    def of(cls, spec: EnvSpec, capacity: int, batch_size: int) -> TransitionReplay:
        return cls(spec.obs_dim, spec.action_dim, spec.discrete_actions, capacity, batch_size)

    def example(self) -> dict[str, jax.Array]:
        """One stored transition: shapes and dtypes."""
        obs = jnp.zeros((self.obs_dim,), jnp.float32)
        action = (jnp.zeros((), jnp.int32) if self.discrete_actions
                  else jnp.zeros((self.action_dim,), jnp.float32))
        zero = jnp.zeros((), jnp.float32)
        return {"obs": obs, "action": action, "reward": zero, "next_obs": obs, "terminated": zero}

    def record(self, state: State, action: jax.Array, next_state: State) -> dict[str, jax.Array]:
        return {"obs": state.obs, "action": action, "reward": next_state.reward,
                "next_obs": next_state.info["final_obs"], "terminated": next_state.info["terminated"]}

    def init(self) -> transitions.TransitionBuffer:
        return transitions.init(self.example(), self.capacity)

    def add(self, buffer: transitions.TransitionBuffer, steps: dict[str, jax.Array]) -> transitions.TransitionBuffer:
        return transitions.add(buffer, jax.tree.map(lambda x: x.reshape((-1,) + x.shape[2:]), steps))  # [U·N, ...]

    def sample(self, buffer: transitions.TransitionBuffer, key: jax.Array) -> dict[str, jax.Array]:
        return transitions.sample(buffer, key, self.batch_size)
