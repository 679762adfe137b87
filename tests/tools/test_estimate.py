"""The cost estimate: exact parts by hand, activations and FLOPs against XLA's compiled update, the refusal."""

import dataclasses
import json

import jax
import jax.numpy as jnp
import pytest

from depthrl import cli, estimate
from depthrl.agents.crl import CRLConfig
from depthrl.errors import ConfigError
from depthrl.training import command
from depthrl.training.train_cli import Args, main

# The estimate of one SGD step must lie within this factor of XLA's buffer assignment (measured on CPU over
# depth 4-32, width 32-256, batch 128-512, both layouts, remat on/off: 0.88-1.43).
MEMORY_FACTOR = 1.5
# FLOPs (Dense layers only) against XLA's count of the unrolled update (which also counts norms, activations).
FLOPS_TOLERANCE = 0.25


def _compiled_update(args: Args):
    trainer = command.build(args)
    state = jax.eval_shape(trainer.agent.init, jax.random.PRNGKey(0))
    b = args.agent.batch_size
    batch = {name: jax.ShapeDtypeStruct((b, dim), jnp.float32)
             for name, dim in (("state", 4), ("action", 2), ("next_state", 4), ("goal", 2))}
    compiled = jax.jit(trainer.agent.update).lower(state, batch, jax.ShapeDtypeStruct((2,), jnp.uint32)).compile()
    return trainer, compiled


def _measured_bytes(compiled) -> int:
    m = compiled.memory_analysis()
    return m.argument_size_in_bytes + m.output_size_in_bytes + m.temp_size_in_bytes - m.alias_size_in_bytes


def test_exact_parts_by_hand(make_tiny_args, tmp_path):
    args = make_tiny_args(tmp_path / "r")  # depth 4, width 16, repr 8, point mass: state 4, goal 2, action 2
    est = estimate.estimate(args, command.build(args))
    w, depth = 16, 4

    def net(in_dim, out_dim):  # stem + LayerNorm, depth × (Dense + LayerNorm), linear head
        return (in_dim * w + w) + 2 * w + depth * (w * w + w + 2 * w) + (w * out_dim + out_dim)

    actor, sa, g = net(4 + 2, 2 * 2), net(4 + 2, 8), net(2, 8)
    assert est.num_params == actor + sa + g + 1  # + log α
    assert est.params_bytes == 4 * est.num_params
    assert est.optimizer_bytes == 2 * est.params_bytes + 3 * 4 + 4  # Adam μ, ν, three Adam counts, SGD steps
    rows_per_env, num_envs = 4000 // 16, 16
    # replay (state, action) + its row counter; the train state's PRNG key, env-step and epoch counters
    assert est.buffer_bytes == rows_per_env * num_envs * (4 + 2) * 4 + 4 + 8 + 4 + 4
    # FLOPs: 2 per multiply-add; actor 3 forwards' worth, φ 5 (critic fwd+bwd, actor fwd + bwd to the action),
    # ψ 4 (critic fwd+bwd, actor fwd), InfoNCE logits [32, 32] × 8 forward + backward
    hidden = depth * w * w
    fwd = {"actor": 6 * w + hidden + w * 4, "sa": 6 * w + hidden + w * 8, "g": 2 * w + hidden + w * 8}
    expected = 2 * 32 * (3 * fwd["actor"] + 5 * fwd["sa"] + 4 * fwd["g"]) + 3 * 2 * 32 * 32 * 8
    assert est.flops_per_sgd_step == expected


@pytest.mark.parametrize("layout, remat", [("unrolled", False), ("scan", True)])
def test_estimate_against_compiled_update(layout, remat):
    args = Args(agent=CRLConfig(depth=8, width=32, batch_size=128, network_layout=layout, remat=remat))
    trainer, compiled = _compiled_update(args)
    est = estimate.estimate(args, trainer)
    measured = _measured_bytes(compiled)
    assert 1 / MEMORY_FACTOR <= est.update_bytes / measured <= MEMORY_FACTOR, (est.update_bytes, measured)
    if layout == "unrolled":  # XLA counts a while loop's body once, so FLOPs are compared unrolled only
        xla_flops = compiled.cost_analysis()["flops"]
        assert abs(est.flops_per_sgd_step / xla_flops - 1) <= FLOPS_TOLERANCE, (est.flops_per_sgd_step, xla_flops)
    else:  # remat (scan) keeps one activation per block: far less than without
        plain = dataclasses.replace(args, agent=dataclasses.replace(args.agent, remat=False))
        no_remat = estimate.estimate(plain, command.build(plain))
        assert est.activation_bytes < 0.3 * no_remat.activation_bytes
        assert no_remat.activation_bytes_remat == est.activation_bytes


def test_memory_grows_with_depth_and_batch_as_modelled():
    base = Args(agent=CRLConfig(depth=64, width=256, batch_size=256))
    est = estimate.estimate(base, command.build(base))
    deeper = dataclasses.replace(base, agent=dataclasses.replace(base.agent, depth=128))
    wider_batch = dataclasses.replace(base, agent=dataclasses.replace(base.agent, batch_size=1024))
    est_deep = estimate.estimate(deeper, command.build(deeper))
    est_batch = estimate.estimate(wider_batch, command.build(wider_batch))
    assert est_deep.activation_bytes == pytest.approx(est.activation_bytes * 129 / 65, rel=0.02)
    assert est_batch.activation_bytes == pytest.approx(4 * est.activation_bytes)
    assert est_deep.num_params > 1.9 * est.num_params
    # --num-devices 4 splits the batch: activations and logits per device shrink, the rest is replicated
    split = dataclasses.replace(base, train=dataclasses.replace(base.train, num_devices=4))
    est_split = estimate.estimate(split, command.build(split))
    assert est_split.activation_bytes == est.activation_bytes // 4 and est_split.logits_bytes == est.logits_bytes // 4
    assert est_split.buffer_bytes == est.buffer_bytes and est_split.params_bytes == est.params_bytes
    assert "4 devices" in est_split.line()


def test_check_fits_names_what_to_change():
    args = Args(agent=CRLConfig(depth=64, width=256, batch_size=1024))
    est = estimate.estimate(args, command.build(args))
    assert est.dominant() == "activations"
    estimate.check_fits(est, est.peak_bytes + 1, "test device")  # fits: no error
    with pytest.raises(ConfigError, match="--batch-size") as err:
        estimate.check_fits(est, est.peak_bytes // 2, "test device")
    assert "--remat" in str(err.value) and "--no-memory-check" in str(err.value)
    big_buffer = dataclasses.replace(est, buffer_bytes=100 * est.peak_bytes)
    with pytest.raises(ConfigError, match="--buffer-size"):
        estimate.check_fits(big_buffer, est.peak_bytes, "test device")


def test_train_refuses_a_run_that_cannot_fit(make_tiny_args, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(estimate, "available_memory", lambda: (64 * 1024, "a 64 KiB test device"))
    args = make_tiny_args(tmp_path / "refused")
    with pytest.raises(ConfigError, match="--no-memory-check"):
        main(args)
    assert "estimate:" in capsys.readouterr().out
    assert not (tmp_path / "refused" / "checkpoints").exists()  # refused before any compute


def test_estimate_command(capsys):
    assert cli.main(["estimate", "--preset", "depth-u-d64", "--json"]) == 0
    plain = json.loads(capsys.readouterr().out)
    assert cli.main(["estimate", "--preset", "depth-u-d64", "--remat", "--json"]) == 0
    remat = json.loads(capsys.readouterr().out)
    assert plain["num_params"] == remat["num_params"] > 800_000 and plain["layouts"] == ["scan"]
    assert remat["activation_bytes"] == plain["activation_bytes_remat"] < plain["activation_bytes"] / 5
    assert remat["flops_per_sgd_step"] > plain["flops_per_sgd_step"]  # remat recomputes the forward
    assert plain["fits"] is True and plain["available_bytes"] > 0
    assert cli.main(["estimate", "--depth", "6"]) == 2  # flags are validated as for train
    assert cli.main(["estimate", "--preset", "quickstart"]) == 0
    out = capsys.readouterr().out
    assert "peak of the run" in out and "estimate: 0.0615 M params" in out
