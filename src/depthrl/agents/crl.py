"""Contrastive RL (CRL) at any depth: Eysenbach et al. 2022, scaled in Wang et al. 2025 ("1000 Layer
Networks for Self-Supervised RL"). Goal-conditioned and reward-free; no target networks.

Critic: f(s, a, g) = E(φ(s, a), ψ(g)) with φ, ψ deep residual encoders (repr_dim outputs), trained by
InfoNCE on (s_t, a_t, g = state_{t+k}[goal_indices]), k ~ geometric(1 − γ) (the buffer relabels).
Actor: tanh-Gaussian π(a | s, g), loss E[α log π − f(s, a~π, g)] on the relabelled goals; α tuned to a
target entropy of −0.5·|A|.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import struct

from depthrl.agents.network_flags import ActorCriticNetworkFlags
from depthrl.envs.base import EnvSpec
from depthrl.errors import ConfigError, check_choice, check_open_unit, check_positive
from depthrl.losses import actor_critic as ac_loss
from depthrl.losses import contrastive as closs
from depthrl.networks.diagnostics import torso_diagnostics
from depthrl.networks.heads import Encoder, GaussianPolicy, sample_tanh_gaussian, tanh_gaussian_mode


@dataclasses.dataclass(frozen=True)
class CRLConfig(ActorCriticNetworkFlags):
    """Contrastive RL agent."""

    critic_depth: int | None = None
    """Critic depth (both encoders φ and ψ); overrides --depth for the critic."""
    repr_dim: int = 64
    """Dimension of the representations φ(s, a) and ψ(g)."""
    energy: str = "l2"
    """Critic energy: l2 (−‖φ−ψ‖, paper default), l2_squared, dot, cosine."""
    temperature: float = 1.0
    """Temperature of the cosine energy (only with --energy cosine)."""
    objective: str = "forward_infonce"
    """Contrastive objective: forward_infonce, backward_infonce, symmetric_infonce, binary_nce."""
    logsumexp_coef: float = 0.1
    """Coefficient of the (logsumexp of each logits row)² regulariser."""
    critic_lr: float = 3e-4
    """Adam learning rate of the critic."""
    actor_lr: float = 3e-4
    """Adam learning rate of the actor."""
    alpha_lr: float = 3e-4
    """Adam learning rate of the entropy temperature α."""
    target_entropy_scale: float = -0.5
    """Target entropy = scale · action_dim (the paper: −0.5)."""
    discount: float = 0.99
    """γ of the geometric future-goal offset (horizon ≈ 1 / (1 − γ))."""
    batch_size: int = 256
    """Transitions per SGD step (also the number of negatives per positive in InfoNCE)."""

    def validate(self) -> None:
        self.validate_network()
        check_positive("--repr-dim", self.repr_dim)
        check_choice("--energy", self.energy, closs.ENERGIES)
        check_choice("--objective", self.objective, closs.OBJECTIVES)
        check_positive("--temperature", self.temperature)
        if self.temperature != 1.0 and self.energy != "cosine":
            raise ConfigError("--temperature", self.temperature,
                              f"only with --energy cosine (the {self.energy} energy has no temperature)")
        if self.logsumexp_coef < 0:
            raise ConfigError("--logsumexp-coef", self.logsumexp_coef, "must be >= 0")
        for flag, lr in (("--critic-lr", self.critic_lr), ("--actor-lr", self.actor_lr),
                         ("--alpha-lr", self.alpha_lr)):
            check_positive(flag, lr)
        check_open_unit("--discount", self.discount)
        if self.batch_size < 2:
            raise ConfigError("--batch-size", self.batch_size, "must be >= 2 (InfoNCE needs negatives)")


@struct.dataclass
class CRLParams:
    actor: Any
    sa_encoder: Any
    g_encoder: Any
    log_alpha: jax.Array


@struct.dataclass
class CRLState:
    params: CRLParams
    actor_opt: Any
    critic_opt: Any
    alpha_opt: Any
    sgd_steps: jax.Array


@dataclasses.dataclass(frozen=True)
class CRL:
    """The agent: networks and optimisers built from a config and an env spec. Hashable (static)."""

    config: CRLConfig
    spec: EnvSpec

    @property
    def actor_net(self) -> GaussianPolicy:
        return GaussianPolicy(self.config.network(self.config.resolved_actor_depth), self.spec.action_dim)

    @property
    def sa_net(self) -> Encoder:
        return Encoder(self.config.network(self.config.resolved_critic_depth), self.config.repr_dim)

    @property
    def g_net(self) -> Encoder:
        return Encoder(self.config.network(self.config.resolved_critic_depth), self.config.repr_dim)

    def _optimizers(self):
        c = self.config
        return optax.adam(c.actor_lr), optax.adam(c.critic_lr), optax.adam(c.alpha_lr)

    def init(self, key: jax.Array) -> CRLState:
        s = self.spec
        actor_key, sa_key, g_key = jax.random.split(key, 3)
        params = CRLParams(
            actor=self.actor_net.init(actor_key, jnp.zeros((1, s.state_dim + s.goal_dim))),
            sa_encoder=self.sa_net.init(sa_key, jnp.zeros((1, s.state_dim + s.action_dim))),
            g_encoder=self.g_net.init(g_key, jnp.zeros((1, s.goal_dim))),
            log_alpha=jnp.zeros((), jnp.float32),
        )
        actor_opt, critic_opt, alpha_opt = self._optimizers()
        return CRLState(
            params=params,
            actor_opt=actor_opt.init(params.actor),
            critic_opt=critic_opt.init((params.sa_encoder, params.g_encoder)),
            alpha_opt=alpha_opt.init(params.log_alpha),
            sgd_steps=jnp.zeros((), jnp.int32),
        )

    # -- acting ---------------------------------------------------------------------------------------
    def act(self, params: CRLParams, obs: jax.Array, key: jax.Array, deterministic: bool) -> jax.Array:
        """obs [..., state_dim + goal_dim] -> action [..., action_dim] in [-1, 1]."""
        mean, log_std = self.actor_net.apply(params.actor, obs)
        if deterministic:
            return tanh_gaussian_mode(mean)
        return sample_tanh_gaussian(key, mean, log_std)[0]

    def q_value(self, params: CRLParams, state: jax.Array, action: jax.Array, goal: jax.Array) -> jax.Array:
        """Critic energy f(s, a, g): state [..., S], action [..., A], goal [..., G] -> [...]."""
        phi = self.sa_net.apply(params.sa_encoder, jnp.concatenate([state, action], -1))
        psi = self.g_net.apply(params.g_encoder, goal)
        return closs.energy_pairwise(phi, psi, self.config.energy, self.config.temperature)

    def critic_logits(self, sa_params: Any, g_params: Any, sa_input: jax.Array,
                      goal: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
        """(logits [B, B], φ [B, repr_dim], ψ [B, repr_dim]) of sa_input [B, S + A] and goal [B, G].

        The diagonal (positives) is computed as `q_value` computes Q, so critic and actor agree exactly.
        """
        phi = self.sa_net.apply(sa_params, sa_input)
        psi = self.g_net.apply(g_params, goal)
        c = self.config
        return closs.critic_logits(phi, psi, c.energy, c.temperature, c.precision), phi, psi

    # -- learning -------------------------------------------------------------------------------------
    def update(self, state: CRLState, batch: dict[str, jax.Array], key: jax.Array) -> tuple[CRLState, dict]:
        """One SGD step on critic, actor and α. batch: state [B, S], action [B, A], goal [B, G]."""
        c, params = self.config, state.params
        actor_opt, critic_opt, alpha_opt = self._optimizers()
        sa_input = jnp.concatenate([batch["state"], batch["action"]], -1)

        def critic_loss_fn(critic_params):
            sa_params, g_params = critic_params
            logits, phi, psi = self.critic_logits(sa_params, g_params, sa_input, batch["goal"])
            per_row = closs.contrastive_loss(logits, c.objective) + c.logsumexp_coef * closs.logsumexp_penalty(
                logits)
            diag = jnp.diagonal(logits)
            off_diag_mean = (jnp.sum(logits) - jnp.sum(diag)) / (logits.size - diag.size)
            aux = {"critic/accuracy": jnp.mean(closs.logits_accuracy(logits)),
                   "critic/logits_pos": jnp.mean(diag), "critic/logits_neg": off_diag_mean,
                   "critic/logsumexp": jnp.mean(jax.nn.logsumexp(logits, axis=1)),
                   # Mean ‖φ‖ and ‖ψ‖: the energy sees only φ − ψ, so a drift shared by both shows only here.
                   "critic/phi_norm": jnp.mean(jnp.linalg.norm(phi, axis=-1)),
                   "critic/psi_norm": jnp.mean(jnp.linalg.norm(psi, axis=-1))}
            return jnp.mean(per_row), (aux, psi)

        critic_params = (params.sa_encoder, params.g_encoder)
        (critic_loss, (critic_aux, psi)), critic_grads = jax.value_and_grad(critic_loss_fn, has_aux=True)(
            critic_params)
        critic_updates, new_critic_opt = critic_opt.update(critic_grads, state.critic_opt, critic_params)
        new_sa, new_g = optax.apply_updates(critic_params, critic_updates)

        alpha = jnp.exp(params.log_alpha)
        actor_obs = jnp.concatenate([batch["state"], batch["goal"]], -1)
        # The actor reuses the critic's ψ(g) (same params, same goals): the goal tower runs once per step, not
        # twice as in the paper's code (`depthrl bench update --reference` measures the difference).
        psi = jax.lax.stop_gradient(psi)

        def actor_loss_fn(actor_params):
            mean, log_std = self.actor_net.apply(actor_params, actor_obs)
            action, log_prob = sample_tanh_gaussian(key, mean, log_std)
            phi = self.sa_net.apply(params.sa_encoder, jnp.concatenate([batch["state"], action], -1))
            q = closs.energy_pairwise(phi, psi, c.energy, c.temperature)
            return jnp.mean(ac_loss.actor_loss(log_prob, q, alpha)), (log_prob, q)

        (actor_loss, (log_prob, q)), actor_grads = jax.value_and_grad(actor_loss_fn, has_aux=True)(params.actor)
        actor_updates, new_actor_opt = actor_opt.update(actor_grads, state.actor_opt, params.actor)
        new_actor = optax.apply_updates(params.actor, actor_updates)

        target_entropy = c.target_entropy_scale * self.spec.action_dim
        alpha_loss, alpha_grad = jax.value_and_grad(
            lambda la: jnp.mean(ac_loss.alpha_loss(la, log_prob, target_entropy)))(params.log_alpha)
        alpha_update, new_alpha_opt = alpha_opt.update(alpha_grad, state.alpha_opt, params.log_alpha)
        new_log_alpha = optax.apply_updates(params.log_alpha, alpha_update)

        new_state = CRLState(
            params=CRLParams(actor=new_actor, sa_encoder=new_sa, g_encoder=new_g, log_alpha=new_log_alpha),
            actor_opt=new_actor_opt, critic_opt=new_critic_opt, alpha_opt=new_alpha_opt,
            sgd_steps=state.sgd_steps + 1,
        )
        metrics = {
            "critic/loss": critic_loss, "actor/loss": actor_loss, "alpha/loss": alpha_loss,
            "alpha/value": alpha, "actor/entropy": -jnp.mean(log_prob), "actor/q": jnp.mean(q),
            "critic/grad_norm": optax.global_norm(critic_grads),
            "actor/grad_norm": optax.global_norm(actor_grads),
            **critic_aux,
        }
        return new_state, metrics

    # -- diagnostics (logged at every evaluation) -----------------------------------------------------
    def diagnostics(self, state: CRLState, batch: dict[str, jax.Array]) -> dict[str, jax.Array]:
        """Feature rank, dormant units and per-block activation norms of φ and the actor on a batch."""
        params, c = state.params, self.config
        sa_input = jnp.concatenate([batch["state"], batch["action"]], -1)
        actor_obs = jnp.concatenate([batch["state"], batch["goal"]], -1)
        return {**torso_diagnostics("sa_encoder", c.network(c.resolved_critic_depth), params.sa_encoder, sa_input),
                **torso_diagnostics("actor", c.network(c.resolved_actor_depth), params.actor, actor_obs)}
