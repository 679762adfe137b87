"""The cost estimate: exact parts by hand, activations and FLOPs against XLA's compiled update, the refusal."""

import dataclasses
import json

import jax
import jax.numpy as jnp
import pytest

from depthrl import cli
from depthrl.agents.crl import CRLConfig
from depthrl.errors import ConfigError
from depthrl.training import command, estimate, loop, runner
from depthrl.training.command import run as main
from depthrl.training.registry import AGENTS
from tiny_runs import cli_flags

Args = AGENTS["crl"].args  # the flags of `depthrl train crl`

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
    args = dataclasses.replace(args, agent=dataclasses.replace(args.agent, norm="layernorm"))  # the default network
    est = estimate.estimate(args, command.build(args))
    w, depth = 16, 4

    def net(in_dim, out_dim):  # stem + LayerNorm, depth × (Dense + LayerNorm), linear head
        return (in_dim * w + w) + 2 * w + depth * (w * w + w + 2 * w) + (w * out_dim + out_dim)

    actor, sa, g = net(4 + 2, 2 * 2), net(4 + 2, 8), net(2, 8)
    assert est.num_params == actor + sa + g + 1  # + log α
    assert est.params_bytes == 4 * est.num_params
    assert est.optimizer_bytes == 2 * est.params_bytes + 3 * 4 + 4  # Adam μ, ν, three Adam counts, SGD steps
    rows_per_env, num_envs = 4000 // 16, 16
    # replay: (state, action) and three int32 episode rings per row, a continuing-row count per env, its row
    # counter; then the train state's PRNG key, env-step and epoch counters
    assert est.buffer_bytes == rows_per_env * num_envs * ((4 + 2) * 4 + 3 * 4) + num_envs * 4 + 4 + 8 + 4 + 4
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


def _compiled_memory(args: Args):
    """What `depthrl train` measures: its three programs compiled for the state's shapes (nothing allocated)."""
    trainer = command.build(args)
    cfg = trainer.config
    abstract = runner.abstract_state(trainer, runner.seed_keys(cfg.seed, cfg.num_seeds))
    programs = runner.compile_programs(trainer, abstract)
    return runner.measure_memory(trainer, abstract, programs), programs


def test_compiled_memory_is_xlas_buffer_assignment(make_tiny_args, tmp_path):
    memory, (epoch, evaluate, diagnostics) = _compiled_memory(make_tiny_args(tmp_path / "r"))
    e, v, d = epoch.memory_analysis(), evaluate.memory_analysis(), diagnostics.memory_analysis()
    state = e.argument_size_in_bytes
    assert memory.state_bytes == state
    # rows × envs × ((state, action) + three int32 episode rings) + a continuing-row count per env + row counter
    assert memory.buffer_bytes == (4000 // 16) * 16 * ((4 + 2) * 4 + 3 * 4) + 16 * 4 + 4
    assert e.alias_size_in_bytes == state  # the state is donated: the epoch writes the next one in place
    assert memory.epoch_bytes == state + e.output_size_in_bytes + e.temp_size_in_bytes - state
    assert memory.peak_bytes == max(memory.epoch_bytes, state + v.output_size_in_bytes + v.temp_size_in_bytes,
                                    state + d.output_size_in_bytes + d.temp_size_in_bytes)
    # CPU: the checkpoint's host copy of the state lives in the same RAM
    assert memory.snapshot_bytes == state and memory.needed_bytes == memory.peak_bytes + state


def test_estimate_compile_reports_what_train_checks(make_tiny_args, tmp_path, capsys):
    memory, _ = _compiled_memory(make_tiny_args(tmp_path / "r"))
    flags = cli_flags(make_tiny_args(tmp_path / "r"))
    flags = flags[:flags.index("--run-dir")]  # the tiny run's env, agent and train flags
    assert cli.main(["estimate", *flags, "--compile", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["compiled"]["peak_bytes"] == memory.peak_bytes
    assert out["compiled"]["needed_bytes"] == memory.needed_bytes
    assert out["estimate_over_compiled"] == pytest.approx(out["peak_bytes"] / memory.peak_bytes)


def test_train_refuses_a_run_whose_compiled_programs_cannot_fit(make_tiny_args, tmp_path, monkeypatch, capsys):
    """The limit (DEPTHRL_MEMORY_LIMIT_BYTES) one byte below the compiled need refuses, before anything is
    allocated or written, naming the flags to change; at exactly the need the run trains, with the epoch traced
    (so compiled) once: the checked program is the one that trains."""
    args = make_tiny_args(tmp_path / "refused")
    args = dataclasses.replace(args, train=dataclasses.replace(args.train, total_env_steps=1200))  # 3 epochs
    memory, _ = _compiled_memory(args)
    monkeypatch.setenv(estimate.MEMORY_LIMIT_ENV, str(memory.needed_bytes - 1))
    with pytest.raises(ConfigError) as err:
        main(args)
    message = str(err.value)
    for flag in ("--remat", "--batch-size", "--num-envs", "--buffer-size", "--no-memory-check"):
        assert flag in message, (flag, message)
    assert f"the limit {estimate.MEMORY_LIMIT_ENV}={memory.needed_bytes - 1}" in message
    assert "memory (compiled): peak" in capsys.readouterr().out
    assert not (tmp_path / "refused").exists()  # refused before the run directory is made

    traces = []
    real_epoch = loop.Trainer.epoch
    monkeypatch.setattr(loop.Trainer, "epoch", lambda self, ts: traces.append(1) or real_epoch(self, ts))
    monkeypatch.setenv(estimate.MEMORY_LIMIT_ENV, str(memory.needed_bytes))
    runner._shared_programs.cache_clear()  # trace afresh (the refused run's programs are shared: `runner.programs`)
    assert main(args) == 0
    assert len(traces) == 1  # 3 epochs, one trace: the compiled program that was checked is the one that ran
    rows = runner.read_metrics(tmp_path / "refused")
    assert rows[-1]["memory/compiled_peak_bytes"] == memory.peak_bytes


def test_compiled_need_per_platform_and_devices():
    """Bytes are per device: an accelerator needs the peak on each; on CPU every device's share and the
    checkpoint's host copy share the RAM."""
    cpu = estimate.CompiledMemory(state_bytes=100, epoch_bytes=300, eval_bytes=150, diagnostics_bytes=120,
                                  buffer_bytes=80, snapshot_bytes=100, num_devices=2, platform="cpu")
    assert cpu.peak_bytes == 300 and cpu.needed_bytes == 2 * 300 + 100
    gpu = dataclasses.replace(cpu, platform="gpu", eval_bytes=400)
    assert gpu.peak_bytes == gpu.needed_bytes == 400
    hints = {"batch_size": 512, "remat": False, "num_envs": 512, "buffer_size": 10**6, "num_seeds": 1}
    estimate.check_compiled_fits(gpu, 400, "a test GPU", hints)  # fits exactly
    with pytest.raises(ConfigError) as err:
        estimate.check_compiled_fits(gpu, 399, "a test GPU", hints)
    assert err.value.flag == "--batch-size"  # temporaries (300) outweigh the state (100)
    assert "per device" in str(err.value) and "more --num-devices" in str(err.value)
    state_heavy = dataclasses.replace(gpu, state_bytes=350)
    with pytest.raises(ConfigError) as err:
        estimate.check_compiled_fits(state_heavy, 399, "a test GPU", {**hints, "num_seeds": 4})
    assert err.value.flag == "--buffer-size" and "fewer --num-seeds (now 4)" in str(err.value)


def test_memory_limit_variable_is_validated(monkeypatch):
    monkeypatch.setenv(estimate.MEMORY_LIMIT_ENV, "lots")
    with pytest.raises(ConfigError, match=estimate.MEMORY_LIMIT_ENV):
        estimate.available_memory()
    monkeypatch.setenv(estimate.MEMORY_LIMIT_ENV, "1024")
    assert estimate.available_memory() == (1024, f"the limit {estimate.MEMORY_LIMIT_ENV}=1024")


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
