"""Group runs (`--group-with`, `runner.train_group`): runs that differ only in traced hyper-parameters and the seed
train in one program, and each run directory ends as a separate run of the same config would: same metrics (up
to float rounding: the vmap is wider), its own checkpoints, and a resume that continues every run."""

import dataclasses
import shutil
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from depthrl.errors import ConfigError, DivergenceError
from depthrl.training import checkpoint as ckpt
from depthrl.training import command, registry, runner
from depthrl.training.loop import TrainConfig
from tiny_runs import TINY_TRAIN, is_timing, main, tiny_crl_args, tiny_env

# One worker runs this module: the diverging test's group program and its run alone are the group fixture's
# (`runner.programs`, shared within a process): 6 s there instead of 25 s on the other worker.
pytestmark = pytest.mark.xdist_group("group_run")

LRS = (3e-4, 1e-3)  # the first is the default: its separate run is the suite's 2-seed tiny run (cached)


def _args(run_dir, critic_lr, seed=0):
    args = tiny_crl_args(run_dir, seed=seed, num_seeds=2)
    return dataclasses.replace(args, agent=dataclasses.replace(args.agent, critic_lr=critic_lr))


def _prepare(args):
    """A run directory holding only its config.json, as `depthrl sweep` prepares a cell of a group."""
    run_dir = Path(args.run_dir)
    run_dir.mkdir(parents=True)
    runner.write_json_atomic(run_dir / runner.CONFIG_FILE, runner.to_dict(args))


def _rows(args):
    return runner.read_metrics(Path(args.run_dir))


def _group(runs):
    first = runs[0]
    return dataclasses.replace(first, resume=first.run_dir, group_with=tuple(r.run_dir for r in runs[1:]))


def _assert_rows_close(got, want):
    assert [r["epoch"] for r in got] == [r["epoch"] for r in want]
    for g, w in zip(got, want, strict=True):
        assert set(g) == set(w)
        for name, value in w.items():
            if is_timing(name) or name == "memory/compiled_peak_bytes":
                continue
            # Accuracies count samples of a batch of 32: a logit tie broken the other way moves one sample.
            atol = 1.0 / 32 if "accuracy" in name else 1e-6
            np.testing.assert_allclose(g[name], value, rtol=1e-5, atol=atol, err_msg=name)


@pytest.fixture(scope="module")
def group(tmp_path_factory):
    """Two runs (critic lr 3e-4 with seed 0, 1e-3 with seed 5; 2 seeds each) trained as one group, and the same two
    as separate runs."""
    base = tmp_path_factory.mktemp("group")
    runs = [_args(base / "group" / "a", LRS[0]), _args(base / "group" / "b", LRS[1], seed=5)]
    for args in runs:
        _prepare(args)
    assert main(_group(runs)) == 0
    separate = [dataclasses.replace(args, run_dir=str(base / "separate" / name))
                for args, name in zip(runs, "ab", strict=True)]
    for args in separate:
        assert main(args) == 0
    return runs, separate


def test_group_equals_separate_runs(group):
    """Every row of each run of the group equals the separate run of its config (mean, std and each seed's
    value of every metric), and the two learning rates did train differently."""
    runs, separate = group
    for args, alone in zip(runs, separate, strict=True):
        _assert_rows_close(_rows(args), _rows(alone))
    losses = [_rows(a)[-1]["critic/loss"] for a in runs]
    assert abs(losses[0] - losses[1]) > 1e-3
    for args in runs:  # each directory holds a plain run's checkpoints (no hparams in them)
        names = [p.name for p in ckpt.list_checkpoints(Path(args.run_dir) / "checkpoints")]
        assert names == ["epoch_00000002", "epoch_00000004"]
        assert "hparams" not in ckpt.read_manifest(Path(args.run_dir) / "checkpoints" / names[-1]).get(
            "omitted", [])


def test_group_resumes_every_run_from_a_common_checkpoint(group, tmp_path):
    """A group killed between its runs' checkpoint writes (run b lost epoch 4, run a kept it) resumes both from
    epoch 2 and ends with the rows of the uninterrupted group."""
    runs, _ = group
    copies = []
    for args in runs:
        copy = tmp_path / Path(args.run_dir).name
        shutil.copytree(args.run_dir, copy)
        copies.append(dataclasses.replace(args, run_dir=str(copy)))
    shutil.rmtree(Path(copies[1].run_dir) / "checkpoints" / "epoch_00000004")
    for args in copies:  # the metrics past epoch 2 of a killed run
        runner._rewrite_metrics(Path(args.run_dir), _rows(args)[:1])
    assert main(_group(copies)) == 0
    for args, original in zip(copies, runs, strict=True):
        _assert_rows_close(_rows(args), _rows(original))


def test_group_with_a_compiled_difference_fails_naming_the_flag(tmp_path):
    """--batch-size changes shapes: not groupable; the error names the flag before any compute. So does
    --skip-non-finite, which would skip every run's epoch for one run's non-finite step."""
    a = _args(tmp_path / "a", LRS[0])
    b = dataclasses.replace(_args(tmp_path / "b", LRS[1]), agent=dataclasses.replace(a.agent, batch_size=16))
    for args in (a, b):
        _prepare(args)
    with pytest.raises(ConfigError, match=r"--group-with.*--batch-size"):
        command.run(_group([a, b]))
    with pytest.raises(ConfigError, match="needs --resume"):
        command.run(dataclasses.replace(a, group_with=(b.run_dir,)))
    with pytest.raises(ConfigError, match="--group-with.*not with --skip-non-finite"):
        command.run(dataclasses.replace(_group([a, dataclasses.replace(b, agent=a.agent)]), skip_non_finite=True))
    assert command.group_conflicts("crl", runner.to_dict(a), runner.to_dict(_args(tmp_path / "c", 3e-4, seed=9))) == []


def test_a_diverging_run_leaves_the_group_and_the_others_finish(tmp_path, capsys):
    """Critic lr 1e30 diverges in its first epoch: its divergence.json is written, the other run trains to the
    end alone (compiled again for a group of one) and the command ends with DivergenceError naming the run. The
    fresh group says once that it starts from the beginning, not once per run (the run left alone says it again
    when it restarts)."""
    runs = [_args(tmp_path / "a", LRS[0]), _args(tmp_path / "b", 1e30)]
    for args in runs:
        _prepare(args)
    with pytest.raises(DivergenceError, match=r"1 run\(s\) of the group diverged: .*b \(see their divergence"):
        command.run(_group(runs))
    before_divergence = capsys.readouterr().err.split(" diverged ")[0]
    assert before_divergence.count("no run of the group has a checkpoint yet: training all 2 from the beginning") == 1
    assert "has no checkpoint yet" not in before_divergence, before_divergence  # no line per run
    assert (tmp_path / "b" / "divergence.json").is_file() and not (tmp_path / "a" / "divergence.json").exists()
    assert [r["epoch"] for r in _rows(runs[0])] == [2, 4] and _rows(runs[1]) == []


# Slow: four SAC/TD3 programs compiled per agent (about 6 min each at load 10 on 2 cores). The group mechanism
# itself (bind, the runner's rows, checkpoints and resume) is covered by the CRL tests above.
@pytest.mark.slow
@pytest.mark.parametrize("kind, values", [
    ("sac", {"critic_lr": 1e-3, "tau": 0.05, "alpha_lr": 1e-3, "sigma_ratio": 0.5}),
    ("td3", {"critic_lr": 1e-3, "tau": 0.05, "policy_noise": 0.1, "exploration_noise": 0.3, "sigma_ratio": 0.5})])
def test_actor_critic_group_epoch_equals_each_rows_own_program(kind, values):
    """One epoch of SAC / TD3 (HL-Gauss critics) on a group of two rows, the default config and one with other
    traced values (the same start state): each row's metrics and parameters equal those of the epoch compiled
    for its own config."""
    entry = registry.get(kind)
    args = entry.args(env=tiny_env(), agent=entry.config(depth=4, width=16, batch_size=32, critic_loss="hl-gauss"),
                      train=TrainConfig(**TINY_TRAIN))
    trainers = [command.build(args), command.build(dataclasses.replace(args, agent=dataclasses.replace(args.agent,
                                                                                                       **values)))]
    start = jax.jit(jax.vmap(trainers[0].start))(runner.seed_keys(0, 1))
    hparams = {name: jnp.asarray([getattr(args.agent, name), value], jnp.float32) for name, value in values.items()}
    group = jax.tree.map(lambda x: jnp.concatenate([x, x]), start).replace(hparams=hparams)
    group_state, group_metrics = jax.jit(jax.vmap(trainers[0].epoch))(group)
    for row, trainer in enumerate(trainers):
        state, metrics = jax.jit(jax.vmap(trainer.epoch))(start)
        for name, value in metrics.items():
            np.testing.assert_allclose(group_metrics[name][row], value[0], rtol=1e-5, atol=1e-6, err_msg=name)
        for got, want in zip(jax.tree.leaves(group_state.agent), jax.tree.leaves(state.agent), strict=True):
            np.testing.assert_allclose(got[row], want[0], rtol=1e-5, atol=1e-6)
    assert not np.allclose(group_metrics["critic/loss"][0], group_metrics["critic/loss"][1])
