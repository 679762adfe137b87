"""Network diagnostics: pure, jittable and cheap enough to log every few updates.

``block_activation_norms`` and ``block_grad_norms`` read either torso layout (see ``torso``'s docstring for
the tree naming); they also accept a tree that contains the torso deeper down (e.g. an ``Encoder``'s
``{"torso": ...}``), as long as it holds exactly one torso.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp

from depthrl.networks.torso import NetworkConfig, ResidualTorso


def param_count(params: Any) -> int:
    """Number of scalars in a params pytree."""
    return sum(int(leaf.size) for leaf in jax.tree.leaves(params))


def flops_per_example(config: NetworkConfig, in_dim: int, out_dim: int = 0) -> int:
    """Forward-pass FLOPs of one example through the torso plus a linear head of ``out_dim`` (0: none).

    Counts the Dense layers only, 2 FLOPs per multiply-add: stem ``in_dim x width``, ``depth`` hidden
    ``width x width`` layers, head ``width x out_dim``. Biases, norms and activations (O(width) per layer,
    under 1% at width 256) are left out, as is usual for MFU. A backward pass costs about twice this.
    """
    macs = in_dim * config.width + config.depth * config.width**2 + config.width * out_dim
    return 2 * macs


def effective_rank(features: jax.Array, threshold: float = 0.01) -> jax.Array:
    """srank (Kumar et al. 2021, Eq. 1): smallest k whose top-k singular values hold 1 - threshold of the sum.

    ``features: [N, D]`` -> int32 scalar in ``[1, min(N, D)]``.
    """
    singular_values = jnp.linalg.svd(features.astype(jnp.float32), compute_uv=False)  # descending
    cumulative = jnp.cumsum(singular_values)
    # Number of prefixes still below the target, plus one: the first prefix that reaches it.
    return jnp.sum(cumulative < (1.0 - threshold) * cumulative[-1]).astype(jnp.int32) + 1


def dormant_ratio(features: jax.Array, tau: float = 0.025) -> jax.Array:
    """Fraction of tau-dormant units, Sokar et al. (2023), Def. 3.1.

    ``features: [..., D]`` (leading axes are examples). A unit's score is its mean |activation| divided by
    the mean of that over all units; the unit is dormant when its score is <= tau.
    """
    features = jnp.abs(features.reshape(-1, features.shape[-1]).astype(jnp.float32))
    per_unit = jnp.mean(features, axis=0)
    score = per_unit / jnp.maximum(jnp.mean(per_unit), jnp.finfo(jnp.float32).tiny)
    return jnp.mean(score <= tau)


def _find_torsos(tree: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """Subtrees holding blocks: ``blocks`` (scan) or ``block_0, block_1, ...`` (unrolled)."""
    if "blocks" in tree or "block_0" in tree:
        return [tree]
    return [torso for sub in tree.values() if isinstance(sub, Mapping) for torso in _find_torsos(sub)]


def _per_block(tree: Mapping[str, Any]) -> list[Any] | Any:
    """Per-block subtrees: a stacked tree (scan; leading axis = block) or a list of trees (unrolled)."""
    torsos = _find_torsos(tree)
    if len(torsos) != 1:
        raise ValueError(f"expected one torso ('blocks' or 'block_0') in the tree, found {len(torsos)}")
    torso = torsos[0]
    if "blocks" in torso:
        return torso["blocks"]
    num_blocks = sum(1 for k in torso if k.startswith("block_"))
    return [torso[f"block_{i}"] for i in range(num_blocks)]


def block_activation_norms(intermediates: Mapping[str, Any]) -> jax.Array:
    """Per-block mean L2 norm of the residual stream, ``[num_blocks]``.

    ``intermediates``: the ``intermediates`` collection from ``apply(..., mutable=["intermediates"])``.
    """
    blocks = _per_block(intermediates)
    if isinstance(blocks, list):
        return jnp.stack([b["out_norm"][0] for b in blocks])
    return blocks["out_norm"][0]


def block_grad_norms(grads: Mapping[str, Any]) -> jax.Array:
    """Per-block global L2 norm of the gradients (or of any params-shaped tree), ``[num_blocks]``."""
    blocks = jax.tree.map(lambda g: g.astype(jnp.float32), _per_block(grads))
    if isinstance(blocks, list):
        return jnp.stack([jnp.sqrt(sum(jnp.sum(jnp.square(g)) for g in jax.tree.leaves(b))) for b in blocks])
    squares = [jnp.sum(jnp.square(g).reshape(g.shape[0], -1), axis=1) for g in jax.tree.leaves(blocks)]
    return jnp.sqrt(sum(squares))


def torso_diagnostics(name: str, config: NetworkConfig, net_params: Any, x: jax.Array) -> dict[str, jax.Array]:
    """Feature rank, dormant ratio and first/last block norms of the torso of a network whose params hold it
    under ``torso`` (``{"params": {"torso": ...}}``), on a batch ``x [B, in_dim]``.

    Returns the metrics ``diag/{name}_effective_rank``, ``_dormant_ratio``, ``_block_norm_first``, ``_block_norm_last``.
    """
    features, variables = ResidualTorso(config).apply({"params": net_params["params"]["torso"]}, x,
                                                      mutable=["intermediates"])
    norms = block_activation_norms(variables["intermediates"])
    return {f"diag/{name}_effective_rank": effective_rank(features),
            f"diag/{name}_dormant_ratio": dormant_ratio(features),
            f"diag/{name}_block_norm_first": norms[0], f"diag/{name}_block_norm_last": norms[-1]}
