"""Soft actor-critic (Haarnoja et al. 2018, "Soft Actor-Critic Algorithms and Applications") with hindsight
relabelling (HER, Andrychowicz et al. 2017) on goal-conditioned envs, at any depth, with a regression or
classification critic (`--critic-loss`, see `depthrl.agents.critics`).

    critic:  twin Q(s, a, g); y = r + γ·(min_i Q̄_i(s', a', g) − α·log π(a'|s', g)), a' ~ π(·|s', g)
    actor:   tanh-Gaussian π(a | s, g); loss E[α·log π(a|s,g) − min_i Q_i(s, a, g)], a ~ π (reparameterised)
    α:       automatic temperature, loss −log α·(log π + H̄) with target entropy H̄ = scale·|A| (App. of
             the paper: H̄ = −|A|)
    targets: Polyak-averaged copies of the critics (the actor has none).

One `update` = one critic step, then one actor step against the updated critics, one α step and one
Polyak step.
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
from depthrl.agents.soft_actor import SoftActor
from depthrl.envs.base import EnvSpec
from depthrl.errors import check_positive
from depthrl.networks.heads import sample_tanh_gaussian


@dataclasses.dataclass(frozen=True)
class SACConfig(critics.ActorCriticConfig):
    """Soft actor-critic with HER."""

    alpha_lr: float = 3e-4
    """Adam learning rate of the entropy temperature α."""
    init_alpha: float = 1.0
    """Initial entropy temperature α (then tuned automatically towards the target entropy)."""
    target_entropy_scale: float = -1.0
    """Target entropy = scale · action_dim (SAC: −1)."""

    def validate(self) -> None:
        super().validate()
        check_positive("--alpha-lr", self.alpha_lr)
        check_positive("--init-alpha", self.init_alpha)


@struct.dataclass
class SACParams:
    actor: Any
    critic: Any  # twin: every leaf has a leading axis of 2
    log_alpha: jax.Array


@struct.dataclass
class SACState:
    params: SACParams
    target_critic: Any
    actor_opt: Any
    critic_opt: Any
    alpha_opt: Any
    sgd_steps: jax.Array


@dataclasses.dataclass(frozen=True)
class SAC:
    """The agent: networks and optimisers built from a config and an env spec. Hashable (static)."""

    config: SACConfig
    spec: EnvSpec

    @property
    def actor(self) -> SoftActor:
        """The tanh-Gaussian policy π(a | s, g) with α tuned to --target-entropy-scale · action_dim."""
        return SoftActor.from_config(self.config, self.spec.action_dim)

    @property
    def critic(self) -> critics.TwinCritic:
        return self.config.twin_critic()

    def _critic_optimizer(self) -> optax.GradientTransformation:
        return optax.adam(self.config.critic_lr)

    def init(self, key: jax.Array) -> SACState:
        s = self.spec
        actor_key, critic_key = jax.random.split(key)
        critic_params = self.critic.init(critic_key, s.state_dim + s.action_dim + s.goal_dim)
        actor = self.actor
        params = SACParams(
            actor=actor.net.init(actor_key, jnp.zeros((1, s.state_dim + s.goal_dim))),
            critic=critic_params,
            log_alpha=jnp.log(jnp.asarray(self.config.init_alpha, jnp.float32)),
        )
        return SACState(params=params, target_critic=critic_params, actor_opt=actor.actor_optimizer.init(params.actor),
                        critic_opt=self._critic_optimizer().init(params.critic),
                        alpha_opt=actor.alpha_optimizer.init(params.log_alpha), sgd_steps=jnp.zeros((), jnp.int32))

    # -- acting ---------------------------------------------------------------------------------------
    def act(self, params: SACParams, obs: jax.Array, key: jax.Array, deterministic: bool) -> jax.Array:
        """obs [..., state_dim + goal_dim] -> action [..., action_dim] in [-1, 1]."""
        return self.actor.act(params.actor, obs, key, deterministic)

    def q_value(self, params: SACParams, state: jax.Array, action: jax.Array, goal: jax.Array) -> jax.Array:
        """min_i Q_i(s, a, g): state [B, S], action [B, A], goal [B, G] -> [B]."""
        return jnp.min(self.critic.q(params.critic, critics.critic_input(state, action, goal)), axis=0)

    # -- learning -------------------------------------------------------------------------------------
    def update(self, state: SACState, batch: dict[str, jax.Array], key: jax.Array) -> tuple[SACState, dict]:
        """One SGD step of critic, actor and α. batch: state, next_state [B, S], action [B, A], goal [B, G]
        (optional reward, terminal [B]; see `critics.reward_and_discount`)."""
        c, params, critic, actor = self.config, state.params, self.critic, self.actor
        next_key, actor_key = jax.random.split(key)
        reward, discount = critics.reward_and_discount(batch, self.spec, c.discount)
        alpha = jnp.exp(params.log_alpha)

        mean, log_std = actor.net.apply(params.actor, critics.actor_input(batch["next_state"], batch["goal"]))
        next_action, next_log_prob = sample_tanh_gaussian(next_key, mean, log_std)
        target_outputs = critic.outputs(state.target_critic,
                                        critics.critic_input(batch["next_state"], next_action, batch["goal"]))
        sa_goal = critics.critic_input(batch["state"], batch["action"], batch["goal"])
        (critic_loss, critic_aux), critic_grads = jax.value_and_grad(critic.td_loss, has_aux=True)(
            params.critic, sa_goal, target_outputs, reward, discount, -alpha * next_log_prob)
        new_critic, new_critic_opt = optimizer_step(self._critic_optimizer(), critic_grads, state.critic_opt,
                                                    params.critic)

        def q_fn(action):  # min_i Q_i(s, a, g) of the critics after their step
            return jnp.min(critic.q(new_critic, critics.critic_input(batch["state"], action, batch["goal"])), axis=0)

        new_actor, new_actor_opt, new_log_alpha, new_alpha_opt, actor_metrics = actor.step(
            params.actor, state.actor_opt, params.log_alpha, state.alpha_opt,
            critics.actor_input(batch["state"], batch["goal"]), q_fn, actor_key)

        new_state = SACState(
            params=SACParams(actor=new_actor, critic=new_critic, log_alpha=new_log_alpha),
            target_critic=critics.polyak(state.target_critic, new_critic, c.tau),
            actor_opt=new_actor_opt, critic_opt=new_critic_opt, alpha_opt=new_alpha_opt,
            sgd_steps=state.sgd_steps + 1,
        )
        metrics = {"critic/loss": critic_loss, "critic/grad_norm": optax.global_norm(critic_grads),
                   **actor_metrics, **critic_aux}
        return new_state, metrics

    # -- diagnostics (logged at every evaluation) -----------------------------------------------------
    def diagnostics(self, state: SACState, batch: dict[str, jax.Array]) -> dict[str, jax.Array]:
        """Feature rank, dormant units and per-block activation norms of critic 0 and the actor on a batch."""
        return critics.diagnostics(self.config, state.params.actor, state.params.critic, batch)
