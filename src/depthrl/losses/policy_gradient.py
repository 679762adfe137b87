"""Policy-gradient losses (PPO, Schulman et al. 2017) and generalised advantage estimation (GAE,
Schulman et al. 2016). Pure, per-example (optax style: the caller reduces), shapes in docstrings.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def gae(rewards: jax.Array, values: jax.Array, next_values: jax.Array, dones: jax.Array, terminated: jax.Array,
        gamma: float, lam: float) -> tuple[jax.Array, jax.Array]:
    """Generalised advantage estimates and λ-returns of a time-major rollout (GAE paper, Eq. 16).

    δ_t = r_t + γ (1 − terminated_t) V(s'_t) − V(s_t),   A_t = δ_t + γ λ (1 − done_t) A_{t+1},   A_T = 0,
    where s'_t is the observation step t reached *before* any auto-reset: a time-limit end (done, not
    terminated) still bootstraps from V(s'_t), and no advantage flows across an episode end. Past the
    rollout's last step the estimate is truncated (bootstrapped by δ_{T−1}'s V(s'_{T−1})).

    rewards, values, next_values, dones, terminated: [T, ...] (values = V(s_t), next_values = V(s'_t)).
    Returns (advantages [T, ...], returns = advantages + values [T, ...]: the value targets).
    """
    not_terminated = 1.0 - terminated
    deltas = rewards + gamma * not_terminated * next_values - values
    carry_on = gamma * lam * (1.0 - dones)

    def backward(next_advantage, step):
        delta, keep = step
        advantage = delta + keep * next_advantage
        return advantage, advantage

    _, advantages = jax.lax.scan(backward, jnp.zeros_like(deltas[0]), (deltas, carry_on), reverse=True)
    return advantages, advantages + values


def ppo_clip_loss(log_prob: jax.Array, old_log_prob: jax.Array, advantage: jax.Array,
                  clip_eps: float) -> jax.Array:
    """Clipped surrogate objective, negated to a loss (PPO paper, Eq. 7):

        −min(ρ A, clip(ρ, 1 − ε, 1 + ε) A),   ρ = exp(log π(a|s) − log π_old(a|s)).

    log_prob, old_log_prob, advantage: [...] (old_log_prob and advantage are constants). Returns [...].
    """
    advantage = jax.lax.stop_gradient(advantage)
    ratio = jnp.exp(log_prob - jax.lax.stop_gradient(old_log_prob))
    return -jnp.minimum(ratio * advantage, jnp.clip(ratio, 1.0 - clip_eps, 1.0 + clip_eps) * advantage)


def normalise(x: jax.Array, eps: float = 1e-8) -> jax.Array:
    """(x − mean) / (std + eps) over all elements (PPO's per-minibatch advantage normalisation)."""
    return (x - jnp.mean(x)) / (jnp.std(x) + eps)
