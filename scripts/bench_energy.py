"""Cost of the accurate CRL energy: the critic's logits (forward + backward) in the old matmul form
‖φ‖² + ‖ψ‖² − 2φψᵀ and in depthrl's (shared mean subtracted, positives from the difference form), next to a
whole CRL update step of the same batch. One JSON line per measurement (median of --repeats timed calls).

    PYTHONPATH=src python scripts/bench_energy.py                    # B = 256 and 512, D = 64, depth 4, width 256
    PYTHONPATH=src python scripts/bench_energy.py --batch 32 --width 16 --repeats 3   # seconds

Both forms run their matmul at JAX's default precision (TF32 on A100/H100/H200, float32 on a CPU); what is
measured is the extra work of the accurate form (a mean, two subtractions, B differences for the diagonal).
"""

from __future__ import annotations

import argparse
import json
import os
import time

import jax
import jax.numpy as jnp

from depthrl.agents.crl import CRL, CRLConfig
from depthrl.envs.registry import EnvConfig, make_envs
from depthrl.losses import contrastive as cl


def old_logits(phi: jax.Array, psi: jax.Array) -> jax.Array:
    """The form before: no centring, default matmul precision, diagonal from the matmul."""
    sq = jnp.sum(phi**2, -1)[:, None] + jnp.sum(psi**2, -1)[None, :] - 2.0 * phi @ psi.T
    return -jnp.sqrt(jnp.maximum(sq, 0.0) + 1e-12)


def new_logits(phi: jax.Array, psi: jax.Array) -> jax.Array:
    return cl.critic_logits(phi, psi, "l2")


def median_seconds(fn, *args, repeats: int) -> float:
    jax.block_until_ready(fn(*args))  # compile
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def loss_grad(logits_fn):
    """InfoNCE + logsumexp penalty on the logits, gradient w.r.t. φ and ψ: what the critic step runs."""

    def loss(phi, psi):
        logits = logits_fn(phi, psi)
        return jnp.mean(cl.contrastive_loss(logits, "forward_infonce") + 0.1 * cl.logsumexp_penalty(logits))

    return jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, nargs="+", default=[256, 512])
    parser.add_argument("--repr-dim", type=int, default=64)
    parser.add_argument("--depth", type=int, default=4)
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=50)
    args = parser.parse_args()
    spec = make_envs(EnvConfig(env="point-maze-u"))[0].spec
    common = {"backend": jax.default_backend(), "load_1min": os.getloadavg()[0], "repr_dim": args.repr_dim}
    for batch in args.batch:
        k1, k2, k3 = jax.random.split(jax.random.PRNGKey(batch), 3)
        phi = jax.random.normal(k1, (batch, args.repr_dim)) + 10.0
        psi = jax.random.normal(k2, (batch, args.repr_dim)) + 10.0
        old = median_seconds(loss_grad(old_logits), phi, psi, repeats=args.repeats)
        new = median_seconds(loss_grad(new_logits), phi, psi, repeats=args.repeats)
        agent = CRL(CRLConfig(depth=args.depth, width=args.width, repr_dim=args.repr_dim, batch_size=batch), spec)
        state = agent.init(k3)
        batch_data = {"state": jax.random.normal(k1, (batch, spec.state_dim)),
                      "action": jnp.zeros((batch, spec.action_dim)),
                      "goal": jax.random.normal(k2, (batch, spec.goal_dim))}
        update = median_seconds(jax.jit(agent.update), state, batch_data, k3, repeats=max(args.repeats // 5, 3))
        print(json.dumps({**common, "batch": batch, "depth": args.depth, "width": args.width,
                          "energy_old_ms": round(old * 1e3, 4), "energy_new_ms": round(new * 1e3, 4),
                          "extra_ms": round((new - old) * 1e3, 4), "crl_update_ms": round(update * 1e3, 3),
                          "extra_share_of_update": round((new - old) / update, 4)}), flush=True)


if __name__ == "__main__":
    main()
