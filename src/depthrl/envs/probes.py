"""Probe environments with known values, for testing that an agent actually learns (bsuite / rejax style).

Each probe isolates one ability; if an agent fails one, the bug is in the part it isolates:

    OneStepReward          value learning at all                 V = 1
    TwoStepChain(γ)        discounting / bootstrapping           V(s0) = γ, V(s1) = 1
    ActionDependentReward  the policy and Q depend on the action Q(a) = +1 / −1 (discrete), −(a − ½)²
    ObsDependentReward     the critic reads the observation      V(obs) = obs ∈ {−1, +1}

Each env exposes `known_v(obs)`, `known_q(obs, action)` and `optimal_action(obs)`: pure functions of one
(unbatched) observation and action that an agent's critic and policy can be compared against.

Contract (`depthrl.envs.base`): `reset(key) -> State`, `step(state, action) -> State`, pure, jittable,
vmappable. The probes **auto-reset themselves**: on the step that ends an episode `done = 1`, `reward` is
that step's reward and `obs` is already the first observation of the next episode, drawn with the PRNG key
the state carries (`physics.key`, split on every step and never reused). A training loop can therefore
`lax.scan` over `step` forever.

`info` (fixed structure, so states can be scanned):
    episode_step [] int32    index of the current `obs` within its episode: 0 right after a reset, and
                             so also on every done step (the obs is already the next episode's first),
                             as in `depthrl.envs.wrappers.EpisodeWrapper`.
    truncated    [] float32  1 when the episode ended by a time limit rather than by termination. The
                             probes always terminate, so it is always 0 here.

Bootstrapping: an agent must bootstrap through truncation and never through termination, i.e. its TD
target is r + γ·(1 − done·(1 − truncated))·V(s'). Every probe episode terminates, so the known values
below are plain discounted sums of the rewards to the end of the episode.

Actions: discrete variants (`spec.discrete_actions > 0`) take an integer index, shape [] or [1];
continuous variants take shape [1] or [] in [spec.action_low, spec.action_high] (clipped).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import jax
import jax.numpy as jnp
from flax import struct

from depthrl.envs.base import EnvSpec, State
from depthrl.errors import ConfigError


@struct.dataclass
class ProbePhysics:
    """Internal state of a probe.

    key:  PRNG key for future auto-resets (split on every step).
    step: [] int32 steps taken in the current episode (0 at its first observation).
    """

    key: jax.Array
    step: jax.Array


def _scalar_action(action: jax.Array) -> jax.Array:
    """Accept an action of shape [] or [1] (one env; vmap adds batch axes)."""
    return jnp.reshape(action, ())


class _ProbeEnv:
    """Shared mechanics: reset, auto-reset and info bookkeeping. Subclasses define the dynamics and a
    `continuous: bool` field (False: 2 discrete actions; True: one continuous action in [−1, 1])."""

    continuous: bool  # a field of each (dataclass) subclass; this base is a plain class, so TwoStepChain
    #                   can take `gamma` as its first positional argument.

    # --- to override -------------------------------------------------------------------------------
    name = "probe"
    obs_dim = 1
    episode_length = 1

    def _initial_obs(self, key: jax.Array) -> jax.Array:
        """[obs_dim] first observation of an episode."""
        del key
        return jnp.ones((self.obs_dim,), jnp.float32)

    def _transition(self, obs: jax.Array, step: jax.Array, action: jax.Array):
        """(reward [], next_obs [obs_dim], terminated [] bool) for one step from `obs` at episode step."""
        raise NotImplementedError

    def known_q(self, obs: jax.Array, action: jax.Array) -> jax.Array:
        """Optimal action value Q*(obs, action): [] float32."""
        raise NotImplementedError

    def known_v(self, obs: jax.Array) -> jax.Array:
        """Optimal state value V*(obs) = Q*(obs, optimal_action(obs)): [] float32."""
        return self.known_q(obs, self.optimal_action(obs))

    def optimal_action(self, obs: jax.Array) -> jax.Array:
        """An optimal action: [] int32 (discrete) or [1] float32 (continuous). Any action for probes
        whose reward ignores the action."""
        del obs
        return jnp.zeros((1,), jnp.float32) if self.continuous else jnp.zeros((), jnp.int32)

    # --- contract ----------------------------------------------------------------------------------
    @property
    def spec(self) -> EnvSpec:
        return EnvSpec(
            name=self.name + ("_continuous" if self.continuous else ""),
            obs_dim=self.obs_dim,
            action_dim=1,
            state_dim=self.obs_dim,
            goal_indices=(),
            episode_length=self.episode_length,
            action_low=-1.0,
            action_high=1.0,
            discrete_actions=0 if self.continuous else 2,
        )

    def reset(self, key: jax.Array) -> State:
        key, obs_key = jax.random.split(key)
        return State(
            obs=self._initial_obs(obs_key),
            reward=jnp.zeros((), jnp.float32),
            done=jnp.zeros((), jnp.float32),
            info={"episode_step": jnp.zeros((), jnp.int32), "truncated": jnp.zeros((), jnp.float32)},
            physics=ProbePhysics(key=key, step=jnp.zeros((), jnp.int32)),
        )

    def step(self, state: State, action: jax.Array) -> State:
        action = _scalar_action(action)
        action = (
            jnp.clip(action.astype(jnp.float32), -1.0, 1.0) if self.continuous else action.astype(jnp.int32)
        )
        reward, next_obs, terminated = self._transition(state.obs, state.physics.step, action)
        key, reset_key = jax.random.split(state.physics.key)
        episode_step = jnp.where(terminated, 0, state.physics.step + 1).astype(jnp.int32)
        return State(
            obs=jnp.where(terminated, self._initial_obs(reset_key), next_obs),
            reward=jnp.asarray(reward, jnp.float32),
            done=terminated.astype(jnp.float32),
            info={"episode_step": episode_step, "truncated": jnp.zeros((), jnp.float32)},
            physics=ProbePhysics(key=key, step=episode_step),
        )


@dataclasses.dataclass(frozen=True)
class OneStepReward(_ProbeEnv):
    """One step, constant obs [1.0], reward +1 whatever the action, then the episode ends.

    Q*(obs, a) = V*(obs) = 1. Tests that the critic can fit a constant at all.
    """

    continuous: bool = False
    name = "probe_one_step"

    def _transition(self, obs, step, action):
        del step, action
        return jnp.float32(1.0), obs, jnp.array(True)

    def known_q(self, obs, action):
        del obs, action
        return jnp.float32(1.0)


@dataclasses.dataclass(frozen=True)
class TwoStepChain(_ProbeEnv):
    """Two states s0 → s1 → end, obs one-hot [2]; reward 0 on leaving s0, +1 on leaving s1; action ignored.

    V*(s0) = Q*(s0, ·) = γ and V*(s1) = Q*(s1, ·) = 1. Tests discounting and bootstrapping: s0's value is
    learnable only through s1's. `gamma` is the agent's discount, used only for the known values.
    """

    gamma: float = 0.99
    continuous: bool = False
    name = "probe_two_step"
    obs_dim = 2
    episode_length = 2

    def __post_init__(self) -> None:
        if not 0.0 <= self.gamma <= 1.0:
            raise ConfigError("--gamma", self.gamma, "must lie in [0, 1]")

    def _initial_obs(self, key):
        del key
        return jnp.array([1.0, 0.0], jnp.float32)

    def _transition(self, obs, step, action):
        del action
        in_second = step >= 1
        reward = jnp.where(in_second, 1.0, 0.0)
        return reward, jnp.array([0.0, 1.0], jnp.float32), in_second

    def known_q(self, obs, action):
        del action
        return jnp.where(obs[1] > 0.5, 1.0, self.gamma).astype(jnp.float32)


@dataclasses.dataclass(frozen=True)
class ActionDependentReward(_ProbeEnv):
    """One step, constant obs [1.0], reward set by the action, then the episode ends.

    Discrete (2 actions): reward +1 for action 0, −1 for action 1: Q*(·, 0) = 1, Q*(·, 1) = −1, V* = 1.
    Continuous (action in [−1, 1]): reward −(a − 0.5)²: Q*(·, a) = −(a − 0.5)², best a = 0.5, V* = 0.
    The quadratic (rather than −|a − 0.5|) is smooth, so a critic fits it easily and the actor's gradient
    shrinks as it nears the optimum.
    """

    continuous: bool = False
    name = "probe_action_dependent"

    def _transition(self, obs, step, action):
        del step
        return self.known_q(obs, action), obs, jnp.array(True)

    def known_q(self, obs, action):
        del obs
        action = _scalar_action(action)
        if self.continuous:
            return -jnp.square(jnp.clip(action.astype(jnp.float32), -1.0, 1.0) - 0.5)
        return jnp.where(action == 0, 1.0, -1.0).astype(jnp.float32)

    def optimal_action(self, obs):
        del obs
        return jnp.full((1,), 0.5, jnp.float32) if self.continuous else jnp.zeros((), jnp.int32)


@dataclasses.dataclass(frozen=True)
class ObsDependentReward(_ProbeEnv):
    """One step; obs [1] is −1 or +1 with equal probability (drawn at each reset), reward = obs, then the
    episode ends; action ignored.

    Q*(obs, ·) = V*(obs) = obs. Tests that the critic conditions on the observation.
    """

    continuous: bool = False
    name = "probe_obs_dependent"

    def _initial_obs(self, key):
        return jnp.where(jax.random.bernoulli(key), 1.0, -1.0).astype(jnp.float32)[None]

    def _transition(self, obs, step, action):
        del step, action
        return obs[0], obs, jnp.array(True)

    def known_q(self, obs, action):
        del action
        return obs[0].astype(jnp.float32)


# Constructors by name, for a registry: each takes the keyword arguments of its class.
PROBE_ENVS: dict[str, Callable[..., _ProbeEnv]] = {
    "probe_one_step": OneStepReward,
    "probe_two_step": TwoStepChain,
    "probe_action_dependent": ActionDependentReward,
    "probe_obs_dependent": ObsDependentReward,
}
