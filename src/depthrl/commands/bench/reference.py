"""The structure of the paper's published CRL step, re-implemented for side-by-side timing only.

Wang et al. 2025 ("1000 Layer Networks for Self-Supervised RL") publish a single-file JAX/brax trainer
(scaling-crl, built on JaxGCRL). `depthrl bench update --reference` and `depthrl bench train --reference`
time this module next to depthrl's own code on the same shapes, in the same process, to measure what
depthrl's structure buys. It is never used for training. What it reproduces (in depthrl's words, not the
paper's code):

* Networks: three separate flax modules (state-action encoder φ, goal encoder ψ, actor), each built with
  a Python loop over residual blocks (unrolled: trace and compile time grow with depth); block = 4 ×
  [Dense → LayerNorm → swish] + skip; a 64-d linear output for φ and ψ; the actor's log-std squashed by
  tanh into [−5, 2].
* One SGD step = actor + α update first, then the critic update, each with its own Adam state. The actor
  loss runs φ(s, π(s, g)) **and ψ(g)** again through the critic parameters; α's loss is
  α · mean(−log π − H̄) with the gradient taken through α = exp(log α).
* Critic: InfoNCE on L2 logits built by broadcasting, ``−‖φ_i − ψ_j‖`` from a ``[B, B, 64]`` difference
  tensor, plus 0.1 · logsumexp² regularisation.
* Sampling (`relabel_trajectory`): every epoch takes one length-T window per env and draws each step's
  future goal from a ``[T, T]`` matrix of discounted, same-episode probabilities with a categorical draw:
  O(T²) per env, where depthrl's buffer draws a truncated-geometric offset in O(1) per sample.
* Several SGD steps run as a `lax.scan` over pre-sampled batches inside one jit.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from depthrl.agents.optim import optimizer_step

# The paper's init: variance scaling 1/3, fan-in, uniform; zero biases.
_KERNEL_INIT = nn.initializers.variance_scaling(1 / 3, "fan_in", "uniform")
LOG_STD_MIN, LOG_STD_MAX = -5.0, 2.0


def _dense(width: int) -> nn.Dense:
    return nn.Dense(width, kernel_init=_KERNEL_INIT, bias_init=nn.initializers.zeros)


def _unrolled_torso(x: jax.Array, width: int, depth: int) -> jax.Array:
    """Stem then depth // 4 residual blocks, each written out (no scan). Called inside a compact module."""
    x = nn.swish(nn.LayerNorm()(_dense(width)(x)))
    for _ in range(depth // 4):
        skip = x
        for _ in range(4):
            x = nn.swish(nn.LayerNorm()(_dense(width)(x)))
        x = x + skip
    return x


class PaperEncoder(nn.Module):
    """φ(s, a) or ψ(g): ``[B, in] -> [B, repr_dim]``."""

    width: int
    depth: int
    repr_dim: int = 64

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        return _dense(self.repr_dim)(_unrolled_torso(x, self.width, self.depth))


class PaperActor(nn.Module):
    """π(a | s, g): ``[B, S + G] -> (mean, log_std) [B, A]``, log_std = tanh rescaled to [−5, 2]."""

    action_dim: int
    width: int
    depth: int

    @nn.compact
    def __call__(self, obs: jax.Array) -> tuple[jax.Array, jax.Array]:
        h = _unrolled_torso(obs, self.width, self.depth)
        mean = _dense(self.action_dim)(h)
        log_std = jnp.tanh(_dense(self.action_dim)(h))
        return mean, LOG_STD_MIN + 0.5 * (LOG_STD_MAX - LOG_STD_MIN) * (log_std + 1)


@dataclasses.dataclass(frozen=True)
class PaperCRL:
    """The paper-structure CRL learner for given shapes. Hashable (static under jit)."""

    state_dim: int
    goal_dim: int
    action_dim: int
    width: int = 256
    depth: int = 4
    repr_dim: int = 64
    learning_rate: float = 3e-4
    logsumexp_coef: float = 0.1
    entropy_scale: float = 0.5  # target entropy = −entropy_scale · action_dim

    @property
    def sa_encoder(self) -> PaperEncoder:
        return PaperEncoder(self.width, self.depth, self.repr_dim)

    @property
    def g_encoder(self) -> PaperEncoder:
        return PaperEncoder(self.width, self.depth, self.repr_dim)

    @property
    def actor(self) -> PaperActor:
        return PaperActor(self.action_dim, self.width, self.depth)

    def init(self, key: jax.Array) -> dict[str, Any]:
        actor_key, sa_key, g_key = jax.random.split(key, 3)
        actor = self.actor.init(actor_key, jnp.zeros((1, self.state_dim + self.goal_dim)))
        critic = {"sa_encoder": self.sa_encoder.init(sa_key, jnp.zeros((1, self.state_dim + self.action_dim))),
                  "g_encoder": self.g_encoder.init(g_key, jnp.zeros((1, self.goal_dim)))}
        alpha = {"log_alpha": jnp.zeros((), jnp.float32)}
        adam = optax.adam(self.learning_rate)
        return {"actor": actor, "critic": critic, "alpha": alpha, "actor_opt": adam.init(actor),
                "critic_opt": adam.init(critic), "alpha_opt": adam.init(alpha)}

    def _actor_and_alpha(self, state: dict, batch: dict, key: jax.Array) -> tuple[dict, dict]:
        adam = optax.adam(self.learning_rate)
        target_entropy = -self.entropy_scale * self.action_dim

        def actor_loss(actor_params):
            mean, log_std = self.actor.apply(actor_params, jnp.concatenate([batch["state"], batch["goal"]], -1))
            std = jnp.exp(log_std)
            pre_tanh = mean + std * jax.random.normal(key, mean.shape)
            action = jnp.tanh(pre_tanh)
            log_prob = jax.scipy.stats.norm.logpdf(pre_tanh, loc=mean, scale=std)
            log_prob = jnp.sum(log_prob - jnp.log(1 - jnp.square(action) + 1e-6), -1)
            # Both critic towers run again here, ψ(g) included, through the (not differentiated) critic params.
            sa_repr = self.sa_encoder.apply(state["critic"]["sa_encoder"],
                                            jnp.concatenate([batch["state"], action], -1))
            g_repr = self.g_encoder.apply(state["critic"]["g_encoder"], batch["goal"])
            q = -jnp.sqrt(jnp.sum(jnp.square(sa_repr - g_repr), -1))
            return jnp.mean(jnp.exp(state["alpha"]["log_alpha"]) * log_prob - q), log_prob

        (loss, log_prob), grads = jax.value_and_grad(actor_loss, has_aux=True)(state["actor"])
        actor, actor_opt = optimizer_step(adam, grads, state["actor_opt"], state["actor"])

        def alpha_loss(alpha_params):
            return jnp.exp(alpha_params["log_alpha"]) * jnp.mean(jax.lax.stop_gradient(-log_prob - target_entropy))

        a_loss, a_grads = jax.value_and_grad(alpha_loss)(state["alpha"])
        alpha, alpha_opt = optimizer_step(adam, a_grads, state["alpha_opt"], state["alpha"])
        state = {**state, "actor": actor, "actor_opt": actor_opt, "alpha": alpha, "alpha_opt": alpha_opt}
        return state, {"actor_loss": loss, "alpha_loss": a_loss}

    def _critic(self, state: dict, batch: dict) -> tuple[dict, dict]:
        adam = optax.adam(self.learning_rate)

        def critic_loss(critic_params):
            sa_repr = self.sa_encoder.apply(critic_params["sa_encoder"],
                                            jnp.concatenate([batch["state"], batch["action"]], -1))
            g_repr = self.g_encoder.apply(critic_params["g_encoder"], batch["goal"])
            logits = -jnp.sqrt(jnp.sum(jnp.square(sa_repr[:, None, :] - g_repr[None, :, :]), -1))  # [B, B]
            loss = -jnp.mean(jnp.diagonal(logits) - jax.nn.logsumexp(logits, axis=1))
            logsumexp = jax.nn.logsumexp(logits + 1e-6, axis=1)
            return loss + self.logsumexp_coef * jnp.mean(logsumexp**2)

        loss, grads = jax.value_and_grad(critic_loss)(state["critic"])
        critic, critic_opt = optimizer_step(adam, grads, state["critic_opt"], state["critic"])
        return {**state, "critic": critic, "critic_opt": critic_opt}, {"critic_loss": loss}

    def sgd_step(self, state: dict, batch: dict, key: jax.Array) -> tuple[dict, dict]:
        """One step: actor and α, then the critic. batch: state [B, S], action [B, A], goal [B, G]."""
        state, actor_metrics = self._actor_and_alpha(state, batch, key)
        state, critic_metrics = self._critic(state, batch)
        return state, {**actor_metrics, **critic_metrics}

    def sgd_steps(self, state: dict, batches: dict, key: jax.Array) -> tuple[dict, dict]:
        """`lax.scan` of `sgd_step` over pre-sampled batches: field -> [K, B, ...]."""
        num_steps = next(iter(batches.values())).shape[0]

        def body(state, inputs):
            batch, step_key = inputs
            return self.sgd_step(state, batch, step_key)

        return jax.lax.scan(body, state, (batches, jax.random.split(key, num_steps)))


def relabel_trajectory(key: jax.Array, states: jax.Array, episode_id: jax.Array, gamma: float,
                       goal_indices: tuple[int, ...]) -> jax.Array:
    """Future goals of every step of one window, the paper code's way. states [T, S], episode_id [T] -> [T, G].

    Builds a [T, T] matrix P_ij = γ^(j−i) for j > i within the same episode (plus 1e-5 on the diagonal so
    that a row is never empty) and draws one column per row from it.
    """
    steps = jnp.arange(states.shape[0])
    is_future = (steps[:, None] < steps[None, :]).astype(jnp.float32)
    discount = gamma ** (steps[None, :] - steps[:, None]).astype(jnp.float32)
    same_episode = episode_id[:, None] == episode_id[None, :]
    probs = is_future * discount * same_episode + jnp.eye(states.shape[0]) * 1e-5
    goal_index = jax.random.categorical(key, jnp.log(probs))
    return states[goal_index][:, jnp.asarray(goal_indices)]


def sample_epoch_batches(key: jax.Array, data: dict[str, jax.Array], total_rows: jax.Array, episode_length: int,
                         num_batches: int, batch_size: int, gamma: float,
                         goal_indices: tuple[int, ...]) -> dict[str, jax.Array]:
    """The paper code's per-epoch sampling on depthrl's buffer layout: field -> [rows, num_envs, ...].

    One window of `episode_length` consecutive rows per env (random start among the written rows), every
    step relabelled with `relabel_trajectory`, flattened, shuffled and cut into `num_batches` batches of
    `batch_size`: field -> [num_batches, batch_size, ...]. Needs num_envs × episode_length ≥ the batches.
    """
    rows, num_envs = data["state"].shape[:2]
    start_key, relabel_key, perm_key = jax.random.split(key, 3)
    newest_start = jnp.maximum(jnp.minimum(total_rows, rows) - episode_length, 1)
    start = jax.random.randint(start_key, (num_envs,), 0, newest_start)
    window = (start[:, None] + jnp.arange(episode_length)[None, :]) % rows  # [E, T]
    env = jnp.arange(num_envs)[:, None]
    states, actions = data["state"][window, env], data["action"][window, env]  # [E, T, ...]
    episode_id = (start[:, None] + jnp.arange(episode_length)[None, :]) // episode_length
    keys = jax.random.split(relabel_key, num_envs)
    goals = jax.vmap(relabel_trajectory, in_axes=(0, 0, 0, None, None))(keys, states, episode_id, gamma,
                                                                         goal_indices)
    flat = {"state": states.reshape(-1, states.shape[-1]), "action": actions.reshape(-1, actions.shape[-1]),
            "goal": goals.reshape(-1, goals.shape[-1])}
    order = jax.random.permutation(perm_key, num_envs * episode_length)[: num_batches * batch_size]
    return {k: v[order].reshape(num_batches, batch_size, -1) for k, v in flat.items()}
