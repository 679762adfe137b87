"""Divergence: a non-finite loss, gradient or parameter stops the run naming the quantity and the SGD step,
keeps the last good checkpoint and writes divergence.json; --skip-non-finite skips the update instead."""

import dataclasses
import json
import shutil
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import struct

from depthrl.cli import main as cli_main
from depthrl.envs.registry import make_envs
from depthrl.errors import DivergenceError
from depthrl.training import checkpoint as ckpt
from depthrl.training import runner, runs
from depthrl.training.loop import TrainConfig, Trainer
from tiny_runs import NUM_EPOCHS, SGD_STEPS, tiny_env


# -- a stub agent whose update goes non-finite exactly where a test says -----------------------------------
@dataclasses.dataclass(frozen=True)
class StubConfig:
    batch_size: int = 8
    discount: float = 0.9


@struct.dataclass
class StubState:
    params: Any
    steps: jax.Array  # SGD steps applied: an update that is skipped does not count
    schedule: jax.Array  # [inf_kernel_at, nan_loss_at, nan_loss_probability]: data, so every test shares a compile


@dataclasses.dataclass(frozen=True)
class StubAgent:
    """A linear policy; its loss is finite unless told otherwise. Steps count from 1, over the whole run."""

    spec: Any
    inf_kernel_at: int = -1  # this step sets the kernel to inf (its loss and grad norm stay finite)
    nan_loss_at: int = -1  # this step's loss is NaN (its parameters stay finite)
    nan_loss_probability: float = 0.0  # each step's loss is NaN with this probability (from its key)
    config: StubConfig = StubConfig()

    def init(self, key):
        kernel = 0.01 * jax.random.normal(key, (self.spec.obs_dim, self.spec.action_dim))
        schedule = jnp.array([self.inf_kernel_at, self.nan_loss_at, self.nan_loss_probability], jnp.float32)
        return StubState(params={"kernel": kernel, "bias": jnp.zeros(self.spec.action_dim)},
                         steps=jnp.zeros((), jnp.int32), schedule=schedule)

    def act(self, params, obs, key, deterministic):
        return jnp.tanh(obs @ params["kernel"] + params["bias"])

    def update(self, state, batch, key):
        steps = state.steps + 1
        inf_kernel_at, nan_loss_at, nan_loss_probability = state.schedule
        kernel = jnp.where(steps == inf_kernel_at, jnp.inf, state.params["kernel"] * 0.99)
        loss = jnp.mean(batch["state"] ** 2)
        loss = jnp.where((steps == nan_loss_at) | (jax.random.uniform(key) < nan_loss_probability), jnp.nan, loss)
        return (state.replace(params={**state.params, "kernel": kernel}, steps=steps),
                {"stub/loss": loss, "stub/grad_norm": jnp.linalg.norm(state.params["kernel"])})

    def diagnostics(self, state, batch):
        return {"diag/steps": state.steps.astype(jnp.float32)}


STUB_TRAIN = TrainConfig(num_envs=4, unroll_length=25, sgd_steps_per_collect=SGD_STEPS, total_env_steps=800,
                         eval_every=200, num_eval_envs=2, buffer_size=400)  # 8 epochs, checkpoint every 2


def _train_stub(run_dir: Path, skip_non_finite=False, **agent_kw):
    train_env, eval_env = make_envs(tiny_env())
    trainer = Trainer(StubAgent(train_env.spec, **agent_kw), train_env, eval_env, STUB_TRAIN)
    options = runner.RunOptions(run_dir=run_dir, tensorboard=False, plots=False, progress=False,
                                skip_non_finite=skip_non_finite)
    return runner.train(trainer, {"kind": "stub"}, options)


def test_non_finite_parameter_is_named_with_its_sgd_step(tmp_path):
    """Step 11 = step 3 of epoch 3: the loss and gradient norm stay finite, only a parameter does not."""
    with pytest.raises(DivergenceError) as err:
        _train_stub(tmp_path, inf_kernel_at=11)
    message = str(err.value)
    assert message.startswith("params became non-finite at SGD step 11 (step 3 of 4 in epoch 3)")
    assert "last good checkpoint is epoch 2" in message and "divergence.json" in message
    report = json.loads((tmp_path / "divergence.json").read_text())
    assert report["quantities"] == ["params"] and report["sgd_step"] == 11 and report["epoch"] == 3
    assert report["non_finite_params"] == ["['kernel']"]
    assert report["param_norms"]["['kernel']"] == "inf" and report["param_norms"]["['bias']"] == 0.0
    assert report["last_good_checkpoint_epoch"] == 2 and report["env_steps"] == 300
    # The last good checkpoint is kept, intact and finite; no metrics row past it.
    assert [p.name for p in ckpt.list_checkpoints(tmp_path / "checkpoints")] == ["epoch_00000002"]
    assert ckpt.verify(tmp_path / "checkpoints" / "epoch_00000002") is None
    assert [r["epoch"] for r in runner.read_metrics(tmp_path)] == [2]


def test_non_finite_loss_is_named_with_its_sgd_step(tmp_path):
    with pytest.raises(DivergenceError, match=r"^stub/loss became non-finite at SGD step 14 \(step 2 of 4 in "
                                              r"epoch 4\)"):
        _train_stub(tmp_path, nan_loss_at=14)
    report = json.loads((tmp_path / "divergence.json").read_text())
    assert report["quantities"] == ["stub/loss"] and report["non_finite_params"] == []
    assert report["metrics"]["stub/loss"] == ["nan"] and np.isfinite(report["metrics"]["stub/grad_norm"][0])
    assert [p.name for p in ckpt.list_checkpoints(tmp_path / "checkpoints")] == ["epoch_00000002"]


def test_skip_non_finite_skips_the_update_and_logs_only_finite_values(tmp_path):
    # Each SGD step's loss is NaN with probability 0.1: at seed 0 some of the 8 epochs have a NaN step, not all.
    rows = _train_stub(tmp_path, skip_non_finite=True, nan_loss_probability=0.1)
    skipped = rows[-1]["skipped_updates"]
    assert 1 <= skipped < 8 and [r["epoch"] for r in rows] == [2, 4, 6, 8]
    # The skipped epochs' updates were dropped: the agent applied only the other epochs' SGD steps.
    assert rows[-1]["diag/steps"] == (8 - skipped) * SGD_STEPS
    for row in rows:  # a window whose every epoch was skipped logs no training metrics
        assert all(np.isfinite(v) for v in row.values() if isinstance(v, float)), row
    assert any("params/global_norm" in row for row in rows)


def test_crl_blow_up_stops_naming_the_critic_and_keeps_the_checkpoint(reference, reference_copy, capsys):
    """A learning-rate blow-up, injected by scaling the critic's (φ) parameters by 1e30 in the newest
    checkpoint: the next SGD step overflows. Through the CLI: exit 3 and the message."""
    checkpoints = reference_copy / "checkpoints"
    shutil.rmtree(checkpoints / f"epoch_{NUM_EPOCHS:08d}")  # resume from epoch NUM_EPOCHS - 2
    _, _, state = runs.load_run(reference_copy)
    params = state.agent.params
    blown = params.replace(sa_encoder=jax.tree.map(lambda x: x * 1e30, params.sa_encoder))
    ckpt.save(checkpoints, NUM_EPOCHS - 2, state.replace(agent=state.agent.replace(params=blown)))
    rows_before = runner.read_metrics(reference_copy)

    code = cli_main(["train", "crl", "--resume", str(reference_copy), "--no-progress", "--no-plots"])
    err = capsys.readouterr().err
    assert code == 3
    first_step = (NUM_EPOCHS - 2) * SGD_STEPS + 1
    assert f"became non-finite at SGD step {first_step} (step 1 of {SGD_STEPS} in epoch {NUM_EPOCHS - 1})" in err
    assert "critic/loss" in err and "params" in err and f"last good checkpoint is epoch {NUM_EPOCHS - 2}" in err
    report = json.loads((reference_copy / "divergence.json").read_text())
    assert report["sgd_step"] == first_step and "critic/loss" in report["quantities"]
    assert any(name.startswith(".sa_encoder") for name in report["non_finite_params"])
    assert {"diag/sa_encoder_effective_rank", "diag/actor_block_norm_last"} <= set(report["diagnostics"])
    assert ckpt.verify(checkpoints / f"epoch_{NUM_EPOCHS - 2:08d}") is None
    assert [r["epoch"] for r in runner.read_metrics(reference_copy)] == [r["epoch"] for r in rows_before
                                                                        if r["epoch"] <= NUM_EPOCHS - 2]


def test_report_names_a_diverged_seed_after_a_finite_one():
    """Seed 0 stayed finite (step -1 as int32, as the epoch reports it), seed 1 went non-finite at its 2nd step:
    the report names seed 1 and its parameters (it used to pick seed 0 and name nothing)."""
    metrics = {"nonfinite/step": np.array([-1, 1], np.int32), "nonfinite/params": np.array([False, True]),
               "nonfinite/stub/loss": np.array([False, False]), "stub/loss": np.array([1.0, np.nan], np.float32)}
    report = runner.non_finite_report(metrics, 2, SGD_STEPS)
    assert (report["seed"], report["what"], report["sgd_step"]) == (1, "params", 2 * SGD_STEPS + 2)
    assert report["where"].endswith("seed 1 of 2") and set(metrics) == {"stub/loss"}
