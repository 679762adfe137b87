"""TD3 (Fujimoto et al. 2018, "Addressing Function Approximation Error in Actor-Critic Methods") with
hindsight relabelling (HER) on goal-conditioned envs, at any depth, with a regression or classification
critic (`--critic-loss`, see `depthrl.agents.critics`).

    critic:  twin Q(s, a, g); y = r + γ·min_i Q̄_i(s', ã, g), with target policy smoothing
             ã = clip(μ̄(s', g) + clip(ε, −c, c), −1, 1), ε ~ N(0, σ²)            (Sec. 5.3)
    actor:   deterministic μ(s, g) = tanh(·); loss −Q_1(s, μ(s, g), g), every d-th step (delayed
             policy updates, Sec. 5.2); the target actor and critics move (Polyak) on the same steps
    acting:  μ(s, g) + N(0, exploration_noise²), clipped to [−1, 1], when not deterministic.

The delay is a mask, not a branch: the actor gradient is computed every step and applied only when
sgd_steps % policy_delay == 0 (static shapes; under the trainer's vmap over seeds a `lax.cond` would run
both branches anyway).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import struct

from depthrl.agents import critics
from depthrl.agents.optim import optimizer_step
from depthrl.envs.base import EnvSpec
from depthrl.errors import ConfigError, check_positive
from depthrl.networks.heads import DeterministicPolicy


@dataclasses.dataclass(frozen=True)
class TD3Config(critics.ActorCriticConfig):
    """TD3 with HER."""

    policy_delay: int = 2
    """Update the actor and the target networks every this many critic steps (TD3: 2)."""
    policy_noise: float = 0.2
    """Std of the Gaussian noise added to the target action (target policy smoothing)."""
    noise_clip: float = 0.5
    """The target-action noise is clipped to [−noise_clip, noise_clip]."""
    exploration_noise: float = 0.1
    """Std of the Gaussian noise added to the action when collecting data."""

    def validate(self) -> None:
        super().validate()
        check_positive("--policy-delay", self.policy_delay)
        for flag, value in (("--policy-noise", self.policy_noise), ("--noise-clip", self.noise_clip),
                            ("--exploration-noise", self.exploration_noise)):
            if not value >= 0:
                raise ConfigError(flag, value, "must be >= 0")


@struct.dataclass
class TD3Params:
    actor: Any
    critic: Any  # twin: every leaf has a leading axis of 2


@struct.dataclass
class TD3State:
    params: TD3Params
    target_actor: Any
    target_critic: Any
    actor_opt: Any
    critic_opt: Any
    sgd_steps: jax.Array


@dataclasses.dataclass(frozen=True)
class TD3:
    """The agent: networks and optimisers built from a config and an env spec. Hashable (static)."""

    config: TD3Config
    spec: EnvSpec

    @property
    def actor_net(self) -> DeterministicPolicy:
        return DeterministicPolicy(self.config.network(self.config.resolved_actor_depth), self.spec.action_dim)

    @property
    def critic(self) -> critics.TwinCritic:
        return self.config.twin_critic()

    def _optimizers(self):
        return optax.adam(self.config.actor_lr), optax.adam(self.config.critic_lr)

    def init(self, key: jax.Array) -> TD3State:
        s = self.spec
        actor_key, critic_key = jax.random.split(key)
        params = TD3Params(
            actor=self.actor_net.init(actor_key, jnp.zeros((1, s.state_dim + s.goal_dim))),
            critic=self.critic.init(critic_key, s.state_dim + s.action_dim + s.goal_dim),
        )
        actor_opt, critic_opt = self._optimizers()
        return TD3State(params=params, target_actor=params.actor, target_critic=params.critic,
                        actor_opt=actor_opt.init(params.actor), critic_opt=critic_opt.init(params.critic),
                        sgd_steps=jnp.zeros((), jnp.int32))

    # -- acting ---------------------------------------------------------------------------------------
    def act(self, params: TD3Params, obs: jax.Array, key: jax.Array, deterministic: bool) -> jax.Array:
        """obs [..., state_dim + goal_dim] -> action [..., action_dim] in [-1, 1] (+ exploration noise)."""
        action = self.actor_net.apply(params.actor, obs)
        if deterministic:
            return action
        noise = self.config.exploration_noise * jax.random.normal(key, action.shape, action.dtype)
        return jnp.clip(action + noise, -1.0, 1.0)

    def q_value(self, params: TD3Params, state: jax.Array, action: jax.Array, goal: jax.Array) -> jax.Array:
        """min_i Q_i(s, a, g): state [B, S], action [B, A], goal [B, G] -> [B]."""
        return jnp.min(self.critic.q(params.critic, critics.critic_input(state, action, goal)), axis=0)

    # -- learning -------------------------------------------------------------------------------------
    def update(self, state: TD3State, batch: dict[str, jax.Array], key: jax.Array) -> tuple[TD3State, dict]:
        """One critic step; an actor and target step every --policy-delay steps. batch as for SAC."""
        c, params, critic = self.config, state.params, self.critic
        actor_opt, critic_opt = self._optimizers()
        reward, discount = critics.reward_and_discount(batch, self.spec, c.discount)

        next_obs = critics.actor_input(batch["next_state"], batch["goal"])
        target_action = self.actor_net.apply(state.target_actor, next_obs)
        noise = jnp.clip(c.policy_noise * jax.random.normal(key, target_action.shape), -c.noise_clip, c.noise_clip)
        next_action = jnp.clip(target_action + noise, -1.0, 1.0)
        target_outputs = critic.outputs(state.target_critic,
                                        critics.critic_input(batch["next_state"], next_action, batch["goal"]))
        sa_goal = critics.critic_input(batch["state"], batch["action"], batch["goal"])
        (critic_loss, critic_aux), critic_grads = jax.value_and_grad(critic.td_loss, has_aux=True)(
            params.critic, sa_goal, target_outputs, reward, discount, jnp.zeros_like(reward))
        new_critic, new_critic_opt = optimizer_step(critic_opt, critic_grads, state.critic_opt, params.critic)

        obs = critics.actor_input(batch["state"], batch["goal"])

        def actor_loss_fn(actor_params):
            action = self.actor_net.apply(actor_params, obs)
            q1 = critic.q(new_critic, critics.critic_input(batch["state"], action, batch["goal"]))[0]
            return -jnp.mean(q1), q1

        (a_loss, q1), actor_grads = jax.value_and_grad(actor_loss_fn, has_aux=True)(params.actor)
        stepped_actor, stepped_actor_opt = optimizer_step(actor_opt, actor_grads, state.actor_opt, params.actor)
        delayed = (state.sgd_steps % c.policy_delay) == 0
        new_actor, new_actor_opt = critics.select_tree(delayed, (stepped_actor, stepped_actor_opt),
                                                       (params.actor, state.actor_opt))
        new_state = TD3State(
            params=TD3Params(actor=new_actor, critic=new_critic),
            target_actor=critics.select_tree(delayed, critics.polyak(state.target_actor, new_actor, c.tau),
                                             state.target_actor),
            target_critic=critics.select_tree(delayed, critics.polyak(state.target_critic, new_critic, c.tau),
                                              state.target_critic),
            actor_opt=new_actor_opt, critic_opt=new_critic_opt, sgd_steps=state.sgd_steps + 1,
        )
        metrics = {
            "critic/loss": critic_loss, "actor/loss": a_loss, "actor/q": jnp.mean(q1),
            "actor/updated": delayed.astype(jnp.float32),
            "critic/grad_norm": optax.global_norm(critic_grads), "actor/grad_norm": optax.global_norm(actor_grads),
            **critic_aux,
        }
        return new_state, metrics

    # -- diagnostics (logged at every evaluation) -----------------------------------------------------
    def diagnostics(self, state: TD3State, batch: dict[str, jax.Array]) -> dict[str, jax.Array]:
        """Feature rank, dormant units and per-block activation norms of critic 0 and the actor on a batch."""
        return critics.diagnostics(self.config, state.params.actor, state.params.critic, batch)
