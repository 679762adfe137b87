"""Actor and temperature losses of a stochastic actor-critic (SAC, Haarnoja et al. 2018), used by SAC and by
CRL's actor (Q = the critic's energy f(s, a, g)). Per-example (optax style: the caller reduces).
"""

from __future__ import annotations

import jax


def actor_loss(log_prob: jax.Array, q: jax.Array, alpha: jax.Array) -> jax.Array:
    """SAC actor loss α·log π(a|s,g) − Q(s, a, g), a ~ π (reparameterised). log_prob, q: [B]; alpha: []. -> [B]."""
    return alpha * log_prob - q


def alpha_loss(log_alpha: jax.Array, log_prob: jax.Array, target_entropy: float) -> jax.Array:
    """Automatic temperature (Haarnoja et al. 2018): −log α · (log π + H̄), π held fixed.

    log_alpha: []; log_prob: [B]; target_entropy H̄: a float. -> [B].
    """
    return -log_alpha * jax.lax.stop_gradient(log_prob + target_entropy)
