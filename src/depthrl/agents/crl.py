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

from depthrl.agents.network_flags import ActorCriticFlags
from depthrl.agents.optim import optimizer_step
from depthrl.agents.soft_actor import SoftActor
from depthrl.envs.base import EnvSpec
from depthrl.errors import ConfigError, check_choice, check_positive
from depthrl.losses import contrastive as closs
from depthrl.networks.diagnostics import torso_diagnostics
from depthrl.networks.heads import Encoder


@dataclasses.dataclass(frozen=True)
class CRLConfig(ActorCriticFlags):
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
    alpha_lr: float = 3e-4
    """Adam learning rate of the entropy temperature α."""
    target_entropy_scale: float = -0.5
    """Target entropy = scale · action_dim (the paper: −0.5)."""

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
        self.validate_optimisation()
        check_positive("--alpha-lr", self.alpha_lr)
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
    def actor(self) -> SoftActor:
        """The tanh-Gaussian policy π(a | s, g) with α tuned to --target-entropy-scale · action_dim."""
        return SoftActor.from_config(self.config, self.spec.action_dim)

    @property
    def sa_net(self) -> Encoder:
        return Encoder(self.config.network(self.config.resolved_critic_depth), self.config.repr_dim)

    @property
    def g_net(self) -> Encoder:
        return Encoder(self.config.network(self.config.resolved_critic_depth), self.config.repr_dim)

    def _critic_optimizer(self) -> optax.GradientTransformation:
        return optax.adam(self.config.critic_lr)

    def init(self, key: jax.Array) -> CRLState:
        s = self.spec
        actor_key, sa_key, g_key = jax.random.split(key, 3)
        actor = self.actor
        params = CRLParams(
            actor=actor.net.init(actor_key, jnp.zeros((1, s.state_dim + s.goal_dim))),
            sa_encoder=self.sa_net.init(sa_key, jnp.zeros((1, s.state_dim + s.action_dim))),
            g_encoder=self.g_net.init(g_key, jnp.zeros((1, s.goal_dim))),
            log_alpha=jnp.zeros((), jnp.float32),
        )
        return CRLState(
            params=params,
            actor_opt=actor.actor_optimizer.init(params.actor),
            critic_opt=self._critic_optimizer().init((params.sa_encoder, params.g_encoder)),
            alpha_opt=actor.alpha_optimizer.init(params.log_alpha),
            sgd_steps=jnp.zeros((), jnp.int32),
        )

    # -- acting ---------------------------------------------------------------------------------------
    def act(self, params: CRLParams, obs: jax.Array, key: jax.Array, deterministic: bool) -> jax.Array:
        """obs [..., state_dim + goal_dim] -> action [..., action_dim] in [-1, 1]."""
        return self.actor.act(params.actor, obs, key, deterministic)

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
        (new_sa, new_g), new_critic_opt = optimizer_step(self._critic_optimizer(), critic_grads, state.critic_opt,
                                                         critic_params)

        # The actor reuses the critic's ψ(g) (same params, same goals): the goal tower runs once per step, not
        # twice as in the paper's code (`depthrl bench update --reference` measures the difference). Q is the
        # energy of the critic before this step's update, as in the paper's code.
        psi = jax.lax.stop_gradient(psi)

        def q_fn(action):
            phi = self.sa_net.apply(params.sa_encoder, jnp.concatenate([batch["state"], action], -1))
            return closs.energy_pairwise(phi, psi, c.energy, c.temperature)

        actor_obs = jnp.concatenate([batch["state"], batch["goal"]], -1)
        new_actor, new_actor_opt, new_log_alpha, new_alpha_opt, actor_metrics = self.actor.step(
            params.actor, state.actor_opt, params.log_alpha, state.alpha_opt, actor_obs, q_fn, key)

        new_state = CRLState(
            params=CRLParams(actor=new_actor, sa_encoder=new_sa, g_encoder=new_g, log_alpha=new_log_alpha),
            actor_opt=new_actor_opt, critic_opt=new_critic_opt, alpha_opt=new_alpha_opt,
            sgd_steps=state.sgd_steps + 1,
        )
        metrics = {"critic/loss": critic_loss, "critic/grad_norm": optax.global_norm(critic_grads),
                   **actor_metrics, **critic_aux}
        return new_state, metrics

    # -- diagnostics (logged at every evaluation) -----------------------------------------------------
    def diagnostics(self, state: CRLState, batch: dict[str, jax.Array]) -> dict[str, jax.Array]:
        """Feature rank, dormant units and per-block activation norms of φ and the actor on a batch."""
        params, c = state.params, self.config
        sa_input = jnp.concatenate([batch["state"], batch["action"]], -1)
        actor_obs = jnp.concatenate([batch["state"], batch["goal"]], -1)
        return {**torso_diagnostics("sa_encoder", c.network(c.resolved_critic_depth), params.sa_encoder, sa_input),
                **torso_diagnostics("actor", c.network(c.resolved_actor_depth), params.actor, actor_obs)}
