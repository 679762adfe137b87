"""--matmul-precision reaches every Dense of every agent and is validated (config.json: training/
test_config_errors.py); CRL's critic and actor Q
agree and stay accurate under a TF32 matmul (emulated on the CPU) when the representations drift."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from depthrl.agents.crl import CRL, CRLConfig
from depthrl.cli import main as cli_main
from depthrl.envs.registry import EnvConfig, make_envs
from depthrl.losses import contrastive as cl
from depthrl.training.registry import AGENTS

sys.path.insert(0, str(Path(__file__).parents[1] / "losses"))
from test_contrastive import tf32  # noqa: E402

ENVS = {"crl": "point-maze-u", "sac": "point-maze-u", "td3": "point-maze-u", "dqn": "cartpole", "ppo": "cartpole"}


def _dot_precisions(jaxpr) -> list:
    """The `precision` of every dot_general in a jaxpr, sub-jaxprs (scan, remat, pjit) included."""
    out = []
    for eqn in jaxpr.eqns:
        if eqn.primitive.name == "dot_general":
            out.append(eqn.params["precision"])
        for value in eqn.params.values():
            for sub in value if isinstance(value, (tuple, list)) else (value,):
                inner = getattr(sub, "jaxpr", sub)
                if hasattr(inner, "eqns"):
                    out.extend(_dot_precisions(inner))
    return out


@pytest.mark.parametrize("kind", sorted(ENVS))
def test_every_dense_of_every_agent_gets_the_precision(kind):
    module, env = AGENTS[kind], ENVS[kind]
    spec = make_envs(EnvConfig(env=env))[0].spec
    base = dataclasses.replace(module.args().agent, depth=8, width=8, network_layout="scan")
    highest = jax.lax.Precision.HIGHEST
    for name, expected in (("highest", (highest, highest)), ("tf32", (jax.lax.Precision.HIGH,) * 2),
                           ("default", None)):
        agent = module.agent(dataclasses.replace(base, matmul_precision=name), spec)
        # init runs every network forward once: every matmul of every network is in its jaxpr
        precisions = _dot_precisions(jax.make_jaxpr(agent.init)(jax.random.PRNGKey(0)).jaxpr)
        assert len(precisions) >= 3, precisions  # stem, a scanned block, a head at least
        assert all(p == expected for p in precisions), (name, precisions)


def test_crl_energy_matmul_gets_the_precision():
    spec = make_envs(EnvConfig(env="point-maze-u"))[0].spec
    for name, expected in (("highest", (jax.lax.Precision.HIGHEST,) * 2), ("default", None)):
        agent = CRL(CRLConfig(depth=4, width=8, repr_dim=4, batch_size=4, matmul_precision=name), spec)
        params = jax.eval_shape(agent.init, jax.random.PRNGKey(0)).params  # shapes only: nothing is computed
        sa_input, goal = jnp.ones((4, spec.state_dim + spec.action_dim)), jnp.ones((4, spec.goal_dim))
        jaxpr = jax.make_jaxpr(agent.critic_logits)(params.sa_encoder, params.g_encoder, sa_input, goal).jaxpr
        precisions = _dot_precisions(jaxpr)
        assert len(precisions) == 2 * 6 + 1 and all(p == expected for p in precisions)  # 2 × (stem, 4, head), energy


@pytest.mark.parametrize("kind", sorted(ENVS))
def test_bad_matmul_precision_fails_at_start_naming_the_flag(kind, tmp_path, capsys):
    assert cli_main(["train", kind, "--matmul-precision", "float64", "--run-dir", str(tmp_path / "r")]) == 2
    assert "--matmul-precision" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


@pytest.fixture
def tf32_matmul(monkeypatch):
    exact = cl._matmul_t
    monkeypatch.setattr(cl, "_matmul_t", lambda a, b, precision: exact(tf32(a), tf32(b), precision))


def test_crl_critic_and_actor_q_agree_under_tf32_with_drifted_representations(tf32_matmul):
    """A shared offset of norm 100 on φ and ψ (added to their heads' biases) changes no energy: the critic's
    positive logits equal the actor's Q and stay within 1e-3 of float64 on the undrifted representations; the
    update logs the drift in critic/phi_norm and critic/psi_norm."""
    spec = make_envs(EnvConfig(env="point-maze-u"))[0].spec
    agent = CRL(CRLConfig(depth=4, width=16, repr_dim=8, batch_size=16), spec)
    k1, k2, k3 = jax.random.split(jax.random.PRNGKey(1), 3)
    state = jax.random.normal(k1, (16, spec.state_dim))
    action = jax.random.uniform(k2, (16, spec.action_dim), minval=-1, maxval=1)
    goal = state[:, jnp.array(spec.goal_indices)] + 0.05 * jax.random.normal(k3, (16, spec.goal_dim))
    batch = {"state": state, "action": action, "goal": goal}
    sa_input = jnp.concatenate([state, action], -1)
    offset = jax.random.normal(jax.random.PRNGKey(2), (8,))
    offset = 100.0 * offset / jnp.linalg.norm(offset)

    def shift(encoder_params):
        return jax.tree_util.tree_map_with_path(
            lambda path, x: x + offset if "head" in jax.tree_util.keystr(path) and x.ndim == 1 else x,
            encoder_params)

    @jax.jit  # one program (traced after the TF32 patch)
    def run(key):
        train_state = agent.init(key)
        p = train_state.params
        drifted = dataclasses.replace(p, sa_encoder=shift(p.sa_encoder), g_encoder=shift(p.g_encoder))
        metrics = agent.update(dataclasses.replace(train_state, params=drifted), batch, key)[1]
        return (agent.critic_logits(p.sa_encoder, p.g_encoder, sa_input, goal),
                agent.critic_logits(drifted.sa_encoder, drifted.g_encoder, sa_input, goal),
                agent.q_value(drifted, state, action, goal), metrics)

    (logits, phi0, psi0), (logits_d, phi, psi), q, metrics = run(jax.random.PRNGKey(0))
    np.testing.assert_allclose(jnp.linalg.norm(phi - phi0, axis=-1), 100.0, rtol=1e-4)  # the drift happened
    reference = -np.sqrt(np.sum((np.float64(phi0)[:, None] - np.float64(psi0)[None]) ** 2, -1))
    np.testing.assert_array_equal(jnp.diagonal(logits_d), q)  # critic positives are the actor's Q
    np.testing.assert_allclose(jnp.diagonal(logits_d), np.diagonal(reference), atol=1e-3)
    np.testing.assert_allclose(logits_d, reference, atol=1e-2)
    np.testing.assert_allclose(logits, reference, atol=1e-2)
    # the diagnostics: mean ‖φ‖ and ‖ψ‖ of the batch the critic saw (≈ 100 here: the drift)
    np.testing.assert_allclose(metrics["critic/phi_norm"], np.mean(np.linalg.norm(phi, axis=-1)), rtol=1e-5)
    np.testing.assert_allclose(metrics["critic/psi_norm"], np.mean(np.linalg.norm(psi, axis=-1)), rtol=1e-5)
    np.testing.assert_allclose(metrics["critic/logits_pos"], np.mean(q), rtol=1e-5)
