"""The maximum-entropy actor of SAC (Haarnoja et al. 2018, "Soft Actor-Critic Algorithms and Applications"),
written once for SAC and CRL: a tanh-Gaussian policy π(a | s, g), its temperature α, and one actor + α step
against any Q.

    actor:  loss E[α·log π(a|s,g) − Q(s, a, g)], a ~ π reparameterised      (`losses.actor_critic.actor_loss`)
    α:      loss −log α·(log π + H̄), H̄ the target entropy, π held fixed    (`losses.actor_critic.alpha_loss`)

The agent passes Q as a function of the sampled action: SAC the smaller of its twin critics (after their step),
CRL the critic's energy f(s, a, g). The α step uses the α the actor step used (α before its own step).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax

from depthrl.agents.optim import optimizer_step
from depthrl.losses import actor_critic as ac_loss
from depthrl.networks.heads import GaussianPolicy, sample_tanh_gaussian, tanh_gaussian_mode


@dataclasses.dataclass(frozen=True)
class SoftActor:
    """A tanh-Gaussian policy network and its Adam optimisers (actor and α). Hashable (static)."""

    net: GaussianPolicy
    actor_lr: float
    alpha_lr: float
    target_entropy: float  # H̄ = target_entropy_scale · action_dim

    @classmethod
    def from_config(cls, config: Any, action_dim: int) -> SoftActor:
        """The actor of an agent config with --actor-depth, --actor-lr, --alpha-lr, --target-entropy-scale and the
        network flags (CRL's, SAC's): H̄ = target_entropy_scale · action_dim."""
        return cls(GaussianPolicy(config.network(config.resolved_actor_depth), action_dim), config.actor_lr,
                   config.alpha_lr, config.target_entropy_scale * action_dim)

    @property
    def actor_optimizer(self) -> optax.GradientTransformation:
        return optax.adam(self.actor_lr)

    @property
    def alpha_optimizer(self) -> optax.GradientTransformation:
        return optax.adam(self.alpha_lr)

    def act(self, actor_params: Any, obs: jax.Array, key: jax.Array, deterministic: bool) -> jax.Array:
        """obs [..., in_dim] -> action [..., action_dim] in [-1, 1]: sampled, or tanh(mean) (deterministic)."""
        mean, log_std = self.net.apply(actor_params, obs)
        if deterministic:
            return tanh_gaussian_mode(mean)
        return sample_tanh_gaussian(key, mean, log_std)[0]

    def step(self, actor_params: Any, actor_opt: Any, log_alpha: jax.Array, alpha_opt: Any, obs: jax.Array,
             q_fn: Callable[[jax.Array], jax.Array], key: jax.Array) -> tuple[Any, Any, jax.Array, Any, dict]:
        """One actor step and one α step.

        obs [B, in_dim]: what the policy sees; q_fn: action [B, action_dim] -> Q [B], differentiable in the
        action (its params are held fixed). Returns (actor params, actor optimizer state, log α, α optimizer
        state, metrics: actor/loss, alpha/loss, alpha/value (α before the step), actor/entropy (−mean log π),
        actor/q, actor/grad_norm).
        """
        alpha = jnp.exp(log_alpha)

        def actor_loss_fn(params):
            mean, log_std = self.net.apply(params, obs)
            action, log_prob = sample_tanh_gaussian(key, mean, log_std)
            q = q_fn(action)
            return jnp.mean(ac_loss.actor_loss(log_prob, q, alpha)), (log_prob, q)

        (actor_loss, (log_prob, q)), actor_grads = jax.value_and_grad(actor_loss_fn, has_aux=True)(actor_params)
        new_actor, new_actor_opt = optimizer_step(self.actor_optimizer, actor_grads, actor_opt, actor_params)

        alpha_loss, alpha_grad = jax.value_and_grad(
            lambda la: jnp.mean(ac_loss.alpha_loss(la, log_prob, self.target_entropy)))(log_alpha)
        new_log_alpha, new_alpha_opt = optimizer_step(self.alpha_optimizer, alpha_grad, alpha_opt, log_alpha)
        metrics = {"actor/loss": actor_loss, "alpha/loss": alpha_loss, "alpha/value": alpha,
                   "actor/entropy": -jnp.mean(log_prob), "actor/q": jnp.mean(q),
                   "actor/grad_norm": optax.global_norm(actor_grads)}
        return new_actor, new_actor_opt, new_log_alpha, new_alpha_opt, metrics
