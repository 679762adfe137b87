"""Fixtures for the one-update unit tests of tests/agents/test_{crl,sac,td3,dqn,ppo,soft_actor}.py: tiny
networks, a fixed hand-made batch, and one jitted update."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from depthrl.envs.base import EnvSpec

NET = dict(depth=4, width=16)  # one residual block
B = 8
GOAL_SPEC = EnvSpec(name="goal", obs_dim=5, action_dim=2, state_dim=3, goal_indices=(0, 1), episode_length=10)
DISCRETE_SPEC = EnvSpec(name="discrete", obs_dim=4, action_dim=1, state_dim=4, goal_indices=(), episode_length=10,
                        discrete_actions=3)


def goal_batch(seed: int = 0, terminal: bool = False) -> dict[str, jax.Array]:
    """state, next_state [B, 3], action [B, 2] in [-1, 1], goal [B, 2]; with terminal: reward [B] and
    terminal = 1 (the TD target is then the reward alone)."""
    k = jax.random.split(jax.random.PRNGKey(seed), 5)
    batch = {"state": jax.random.normal(k[0], (B, 3)), "next_state": jax.random.normal(k[1], (B, 3)),
             "action": jax.random.uniform(k[2], (B, 2), minval=-1.0, maxval=1.0),
             "goal": jax.random.normal(k[3], (B, 2))}
    if terminal:
        batch.update(reward=jax.random.uniform(k[4], (B,)), terminal=jnp.ones(B))
    return batch


def discrete_batch(seed: int = 0) -> dict[str, jax.Array]:
    """obs, next_obs [B, 4], action [B] in {0, 1, 2}, reward [B], terminated [B]."""
    k = jax.random.split(jax.random.PRNGKey(seed), 5)
    return {"obs": jax.random.normal(k[0], (B, 4)), "next_obs": jax.random.normal(k[1], (B, 4)),
            "action": jax.random.randint(k[2], (B,), 0, 3), "reward": jax.random.uniform(k[3], (B,)),
            "terminated": (jnp.arange(B) % 3 == 0).astype(jnp.float32)}


def init_and_update(agent, batch, steps: int = 1, key: int = 1):
    """(initial state, [states after each update], [metrics of each update]): `steps` jitted updates on `batch`,
    all with the same key."""
    state = jax.jit(agent.init)(jax.random.PRNGKey(0))
    update = jax.jit(agent.update)
    states, metrics = [], []
    current = state
    for _ in range(steps):
        current, m = update(current, batch, jax.random.PRNGKey(key))
        states.append(current)
        metrics.append(m)
    return state, states, metrics


def alpha_step_sign(entropy: float, target_entropy: float) -> float:
    """Adam's first step moves log α by −lr·sign(∂L/∂log α) = −lr·sign(entropy − H̄): α falls when the policy's
    entropy exceeds the target, rises when it falls short."""
    return -1.0 if entropy > target_entropy else 1.0
