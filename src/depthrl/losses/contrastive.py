"""Contrastive RL losses (Eysenbach et al. 2022; Wang et al. 2025, "1000 Layer Networks", Sec. 3).

The critic is an energy f(s, a, g) = E(φ(s, a), ψ(g)) between a state-action representation φ and a goal
representation ψ. On a batch of B (s_i, a_i, g_i) triples, g_i relabelled from the future of the same
trajectory, the logits matrix L_ij = E(φ_i, ψ_j) has its positives on the diagonal and InfoNCE
classifies them. All functions are per-example: the caller reduces (mean) over the batch.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

ENERGIES = ("l2", "l2_squared", "dot", "cosine")
OBJECTIVES = ("forward_infonce", "backward_infonce", "symmetric_infonce", "binary_nce")

# sqrt is not differentiable at 0: a small floor keeps the l2 gradient finite when φ = ψ exactly.
_L2_EPS = 1e-12


def _matmul_t(a: jax.Array, b: jax.Array, precision: str | None) -> jax.Array:
    """a [B, D] @ b [B', D]ᵀ: the energies' only matmul (tests replace it to emulate a TF32 matmul on a CPU)."""
    return jnp.matmul(a, b.T, precision=precision)


def _squared_distances(sa: jax.Array, g: jax.Array, precision: str | None) -> jax.Array:
    """‖sa_i − g_j‖² for all pairs via ‖a‖² + ‖b‖² − 2 a·b (one matmul instead of a [B, B', D] tensor).

    Both sides are first shifted by their shared mean c (distances do not change): the matmul form cancels
    ‖a‖² + ‖b‖² against 2 a·b, so its rounding error grows with ‖a‖·‖b‖. Representations whose norms drift
    by a common offset o (‖o‖ = 100 at D = 64) would otherwise lose the distance to rounding: TF32-rounded
    inputs gave errors above 1 on −‖φ − ψ‖; centred, the error depends on the spread of φ and ψ only.
    c is held fixed in the backward pass: the distance does not depend on it, so the gradient is unchanged.
    """
    c = jax.lax.stop_gradient((jnp.sum(sa, 0) + jnp.sum(g, 0)) / (sa.shape[0] + g.shape[0]))
    sa, g = sa - c, g - c
    sq = jnp.sum(sa**2, -1)[:, None] + jnp.sum(g**2, -1)[None, :] - 2.0 * _matmul_t(sa, g, precision)
    return jnp.maximum(sq, 0.0)


def _unit(x: jax.Array) -> jax.Array:
    return x / jnp.sqrt(jnp.sum(x**2, axis=-1, keepdims=True) + _L2_EPS)


def energy_matrix(sa_repr: jax.Array, g_repr: jax.Array, energy: str, temperature: float = 1.0,
                  precision: str | None = None) -> jax.Array:
    """All-pairs energies E(φ_i, ψ_j).

    sa_repr:   [B, D] state-action representations φ(s_i, a_i).
    g_repr:    [B', D] goal representations ψ(g_j).
    energy:    "l2" (−‖φ−ψ‖₂, the paper's default), "l2_squared" (−‖φ−ψ‖²), "dot" (φ·ψ) or
               "cosine" (φ̂·ψ̂ / temperature, unit vectors).
    precision: of the matmul (jax.lax.Precision name; None: JAX's default, TF32 on recent NVIDIA GPUs).
    Returns logits [B, B'].
    """
    if energy == "l2":
        return -jnp.sqrt(_squared_distances(sa_repr, g_repr, precision) + _L2_EPS)
    if energy == "l2_squared":
        return -_squared_distances(sa_repr, g_repr, precision)
    if energy == "dot":
        return _matmul_t(sa_repr, g_repr, precision)
    if energy == "cosine":
        return _matmul_t(_unit(sa_repr), _unit(g_repr), precision) / temperature
    raise ValueError(f"unknown energy {energy!r}; choose one of {ENERGIES}")


def critic_logits(sa_repr: jax.Array, g_repr: jax.Array, energy: str, temperature: float = 1.0,
                  precision: str | None = None) -> jax.Array:
    """The critic's square logits matrix L_ij = E(φ_i, ψ_j), positives on the diagonal: [B, D] x [B, D] -> [B, B].

    Off the diagonal, `energy_matrix`; on it, `energy_pairwise` (the exact difference form, no matmul), so the
    positives are the very numbers the actor uses as Q, exact whatever precision the matmul runs at. A positive
    pair is close (small ‖φ − ψ‖), where the matmul form's absolute error weighs most in −sqrt(·).
    """
    if sa_repr.shape[0] != g_repr.shape[0]:
        raise ValueError(f"critic_logits needs as many goals as state-actions: {sa_repr.shape} vs {g_repr.shape}")
    index = jnp.arange(sa_repr.shape[0])
    positives = energy_pairwise(sa_repr, g_repr, energy, temperature)
    return energy_matrix(sa_repr, g_repr, energy, temperature, precision).at[index, index].set(positives)


def energy_pairwise(sa_repr: jax.Array, g_repr: jax.Array, energy: str, temperature: float = 1.0) -> jax.Array:
    """Row-wise energies E(φ_i, ψ_i): sa_repr, g_repr [..., D] -> [...]. Used as Q by the actor."""
    if energy == "l2":
        return -jnp.sqrt(jnp.sum((sa_repr - g_repr) ** 2, -1) + _L2_EPS)
    if energy == "l2_squared":
        return -jnp.sum((sa_repr - g_repr) ** 2, -1)
    if energy == "dot":
        return jnp.sum(sa_repr * g_repr, -1)
    if energy == "cosine":
        return jnp.sum(_unit(sa_repr) * _unit(g_repr), -1) / temperature
    raise ValueError(f"unknown energy {energy!r}; choose one of {ENERGIES}")


def contrastive_loss(logits: jax.Array, objective: str) -> jax.Array:
    """Per-row contrastive loss on a square logits matrix with positives on the diagonal.

    logits: [B, B], L_ij = E(φ(s_i, a_i), ψ(g_j)).
    objective:
      forward_infonce   −log softmax_j(L_ij)[i]: which goal was reached from (s_i, a_i) (paper default)
      backward_infonce  −log softmax_i(L_ij)[j]: which (s, a) reached goal g_j
      symmetric_infonce mean of the two
      binary_nce        σ-cross-entropy, L_ii labelled 1 and L_ij (i≠j) labelled 0, averaged per row
                        with equal weight on the positive and on the mean negative
    Returns [B].
    """
    b = logits.shape[0]
    if objective == "forward_infonce":
        return -jnp.diagonal(jax.nn.log_softmax(logits, axis=1))
    if objective == "backward_infonce":
        return -jnp.diagonal(jax.nn.log_softmax(logits, axis=0))
    if objective == "symmetric_infonce":
        return 0.5 * (contrastive_loss(logits, "forward_infonce") + contrastive_loss(logits, "backward_infonce"))
    if objective == "binary_nce":
        eye = jnp.eye(b, dtype=logits.dtype)
        bce = optax.sigmoid_binary_cross_entropy(logits, eye)
        positive = jnp.diagonal(bce)
        negative = jnp.sum(bce * (1.0 - eye), axis=1) / jnp.maximum(b - 1, 1)
        return positive + negative
    raise ValueError(f"unknown objective {objective!r}; choose one of {OBJECTIVES}")


def logsumexp_penalty(logits: jax.Array) -> jax.Array:
    """(logsumexp_j L_ij)²: keeps the InfoNCE logits normalised (the paper uses coefficient 0.1).

    logits: [B, B] -> [B].
    """
    return jax.nn.logsumexp(logits, axis=1) ** 2


def logits_accuracy(logits: jax.Array) -> jax.Array:
    """[B, B] -> [B]: 1.0 where the row's argmax is its diagonal (the critic picks the true goal)."""
    return (jnp.argmax(logits, axis=1) == jnp.arange(logits.shape[0])).astype(jnp.float32)

