"""PPO (Schulman et al. 2017) at any depth, with a value head trained by regression or classification.

Actor: residual torso + linear head → logits of a categorical policy over the env's discrete actions
(last layer initialised small, so the first policy is near uniform). Critic: a separate residual torso
+ a scalar head (--critic-loss mse) or the logits of a categorical value (hl-gauss, two-hot: cross-entropy
against the histogram of the λ-return target; Farebrother et al. 2024, Sec. 3). C51 has no place here:
PPO's value target is a scalar return estimate, not a distributional Bellman backup.

Loss of one minibatch (the on-policy loop `training.onpolicy` supplies advantages and λ-returns from GAE):
    clipped surrogate (PPO Eq. 7) + --value-coef · value loss − --entropy-coef · policy entropy,
one Adam optimiser over actor and critic, gradients clipped to --max-grad-norm.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import struct

from depthrl.agents.dqn import check_discrete
from depthrl.agents.network_flags import ActorCriticNetworkFlags
from depthrl.agents.optim import optimizer_step
from depthrl.agents.value_heads import ValueFlags, read_value, scalar_target_loss, value_network
from depthrl.envs.base import EnvSpec
from depthrl.errors import ConfigError, check_open_unit, check_positive
from depthrl.losses import policy_gradient as pg
from depthrl.losses import value_dist as vd
from depthrl.networks.diagnostics import torso_diagnostics
from depthrl.networks.heads import CategoricalPolicy

PPO_CRITIC_LOSSES = vd.SCALAR_TARGET_LOSSES  # mse, hl-gauss, two-hot


@dataclasses.dataclass(frozen=True)
class PPOConfig(ActorCriticNetworkFlags, ValueFlags):
    """PPO agent (discrete actions)."""

    critic_loss: str = "hl-gauss"
    """Value loss: mse (regression), hl-gauss or two-hot (classification; Farebrother et al. 2024)."""
    critic_depth: int | None = None
    """Critic (value network) depth; overrides --depth for the value network."""
    lr: float = 3e-4
    """Adam learning rate (actor and critic)."""
    batch_size: int = 256
    """Transitions per minibatch SGD step (at most --num-envs × --unroll-length, one rollout)."""
    discount: float = 0.99
    """Discount γ."""
    gae_lambda: float = 0.95
    """GAE λ: 0 = one-step TD advantages, 1 = Monte-Carlo returns."""
    clip_eps: float = 0.2
    """PPO clipping ε of the probability ratio."""
    entropy_coef: float = 0.01
    """Weight of the policy-entropy bonus."""
    value_coef: float = 0.5
    """Weight of the value loss."""
    max_grad_norm: float = 0.5
    """Clip the gradient to this global norm."""
    normalize_advantages: bool = True
    """Normalise the advantages of each minibatch to zero mean and unit variance."""

    def validate(self) -> None:
        self.validate_network()
        if self.critic_loss == "c51":
            raise ConfigError("--critic-loss", self.critic_loss,
                              f"PPO's value target is a scalar return: choose one of {', '.join(PPO_CRITIC_LOSSES)}")
        self.validate_value(PPO_CRITIC_LOSSES)
        check_positive("--lr", self.lr)
        check_positive("--batch-size", self.batch_size)
        check_open_unit("--discount", self.discount)
        if not 0.0 <= self.gae_lambda <= 1.0:
            raise ConfigError("--gae-lambda", self.gae_lambda, "must lie in [0, 1]")
        check_positive("--clip-eps", self.clip_eps)
        for flag, coef in (("--entropy-coef", self.entropy_coef), ("--value-coef", self.value_coef)):
            if coef < 0:
                raise ConfigError(flag, coef, "must be >= 0")
        check_positive("--max-grad-norm", self.max_grad_norm)


@struct.dataclass
class PPOParams:
    actor: Any
    critic: Any


@struct.dataclass
class PPOState:
    params: PPOParams
    opt: Any
    sgd_steps: jax.Array


@dataclasses.dataclass(frozen=True)
class PPO:
    """The agent: networks and optimiser from a config and an env spec. Hashable (static)."""

    config: PPOConfig
    spec: EnvSpec

    def __post_init__(self) -> None:
        check_discrete(self.spec, "ppo")

    @property
    def actor_net(self) -> CategoricalPolicy:
        return CategoricalPolicy(self.config.network(self.config.resolved_actor_depth), self.spec.discrete_actions)

    @property
    def critic_net(self):
        return value_network(self.config, None, self.config.resolved_critic_depth)

    def _optimizer(self):
        return optax.chain(optax.clip_by_global_norm(self.config.max_grad_norm), optax.adam(self.config.lr))

    def init(self, key: jax.Array) -> PPOState:
        actor_key, critic_key = jax.random.split(key)
        obs = jnp.zeros((1, self.spec.obs_dim))
        params = PPOParams(actor=self.actor_net.init(actor_key, obs), critic=self.critic_net.init(critic_key, obs))
        return PPOState(params=params, opt=self._optimizer().init(params), sgd_steps=jnp.zeros((), jnp.int32))

    # -- acting and the quantities GAE needs ----------------------------------------------------------
    def act(self, params: PPOParams, obs: jax.Array, key: jax.Array, deterministic: bool) -> jax.Array:
        """obs [..., obs_dim] -> action [...] int32: sampled, or the most likely (deterministic)."""
        logits = self.actor_net.apply(params.actor, obs)
        if deterministic:
            return jnp.argmax(logits, axis=-1).astype(jnp.int32)
        return jax.random.categorical(key, logits).astype(jnp.int32)

    def _critic_out(self, critic_params: Any, obs: jax.Array) -> jax.Array:
        """[..., obs_dim] -> [...] (mse) or [..., num_bins] logits."""
        return self.critic_net.apply(critic_params, obs)

    def value(self, params: PPOParams, obs: jax.Array) -> jax.Array:
        """V(obs): [..., obs_dim] -> [...] (the expectation of the categorical value)."""
        return read_value(self._critic_out(params.critic, obs), self.config)

    def log_prob(self, params: PPOParams, obs: jax.Array, action: jax.Array) -> jax.Array:
        """log π(action | obs): obs [..., obs_dim], action [...] int -> [...]."""
        logits = jax.nn.log_softmax(self.actor_net.apply(params.actor, obs), axis=-1)
        return jnp.take_along_axis(logits, action.astype(jnp.int32)[..., None], axis=-1)[..., 0]

    # -- learning -------------------------------------------------------------------------------------
    def loss(self, params: PPOParams, batch: dict[str, jax.Array]) -> tuple[jax.Array, dict]:
        """Minibatch loss. batch: obs [B, O], action [B], log_prob [B] (behaviour), advantage [B],
        target [B] (λ-return)."""
        c = self.config
        logits = jax.nn.log_softmax(self.actor_net.apply(params.actor, batch["obs"]), axis=-1)
        log_prob = jnp.take_along_axis(logits, batch["action"].astype(jnp.int32)[:, None], axis=-1)[:, 0]
        advantage = pg.normalise(batch["advantage"]) if c.normalize_advantages else batch["advantage"]
        policy_loss = jnp.mean(pg.ppo_clip_loss(log_prob, batch["log_prob"], advantage, c.clip_eps))
        entropy = jnp.mean(-jnp.sum(jnp.exp(logits) * logits, axis=-1))
        out = self._critic_out(params.critic, batch["obs"])
        value_loss = jnp.mean(scalar_target_loss(out, batch["target"], c))
        total = policy_loss + c.value_coef * value_loss - c.entropy_coef * entropy
        log_ratio = log_prob - batch["log_prob"]
        value = read_value(out, c)
        aux = {"actor/loss": policy_loss, "critic/loss": value_loss, "actor/entropy": entropy,
               # KL(old || new) estimate (Schulman's k3) and the fraction of clipped ratios.
               "actor/approx_kl": jnp.mean(jnp.expm1(log_ratio) - log_ratio),
               "actor/clip_fraction": jnp.mean((jnp.abs(jnp.exp(log_ratio) - 1.0) > c.clip_eps).astype(jnp.float32)),
               "critic/value": jnp.mean(value), "critic/target": jnp.mean(batch["target"])}
        aux["critic/out_of_support"] = vd.out_of_support_fraction(batch["target"], c.support(), c.critic_loss)
        return total, aux

    def update(self, state: PPOState, batch: dict[str, jax.Array], key: jax.Array) -> tuple[PPOState, dict]:
        """One minibatch SGD step on actor and critic."""
        del key  # the minibatch is the only randomness
        (loss, aux), grads = jax.value_and_grad(self.loss, has_aux=True)(state.params, batch)
        params, opt = optimizer_step(self._optimizer(), grads, state.opt, state.params)
        metrics = {"loss": loss, "actor/grad_norm": optax.global_norm(grads.actor),
                   "critic/grad_norm": optax.global_norm(grads.critic), **aux}
        return PPOState(params=params, opt=opt, sgd_steps=state.sgd_steps + 1), metrics

    # -- diagnostics (logged at every evaluation) -----------------------------------------------------
    def diagnostics(self, state: PPOState, batch: dict[str, jax.Array]) -> dict[str, jax.Array]:
        """Feature rank, dormant units and per-block activation norms of the actor and critic torsos."""
        c, params = self.config, state.params
        return {**torso_diagnostics("actor", c.network(c.resolved_actor_depth), params.actor, batch["obs"]),
                **torso_diagnostics("critic", c.network(c.resolved_critic_depth), params.critic, batch["obs"])}
