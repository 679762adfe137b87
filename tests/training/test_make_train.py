"""`loop.make_train`: the whole training as a pure function of a key. Same key → bit-identical result, a vmap
over keys equals separate calls, and `depthrl train` (the runner: the same `start` and `epoch` with
evaluations, checkpoints and logs between epochs) gives its numbers for the same config and seed."""

from pathlib import Path

import jax
import numpy as np
import pytest

from depthrl.commands.train import main
from depthrl.training import command, runner
from depthrl.training.loop import make_train
from tiny_runs import tiny_crl_args


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """The tiny CRL run (4 epochs of 400 env steps, evaluated every 2) and `train` vmapped over keys, jitted: the
    way the runner runs its seeds (one compile per number of keys)."""
    args = tiny_crl_args(tmp_path_factory.mktemp("make_train") / "run")
    trainer = command.build(args)
    return args, trainer, jax.jit(jax.vmap(make_train(trainer)))


def _leaves_equal(a, b) -> bool:
    return all(np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True))


def test_same_key_same_result_and_another_key_differs(tiny):
    _, trainer, train = tiny
    cfg = trainer.config
    state, metrics = train(runner.seed_keys(0, 1))
    again_state, again_metrics = train(runner.seed_keys(0, 1))
    other_state, other_metrics = train(runner.seed_keys(1, 1))
    assert metrics["critic/loss"].shape == (1, cfg.num_epochs)
    assert int(state.epoch[0]) == cfg.num_epochs and int(state.env_steps[0]) == cfg.num_epochs * cfg.steps_per_epoch
    assert _leaves_equal(state, again_state) and _leaves_equal(metrics, again_metrics)
    assert not np.array_equal(metrics["critic/loss"], other_metrics["critic/loss"])
    assert not _leaves_equal(state.agent.params, other_state.agent.params)


def test_vmap_over_keys_equals_separate_calls(tiny):
    _, trainer, train = tiny
    keys = jax.random.split(jax.random.PRNGKey(3), 2)
    states, metrics = train(keys)
    batch_size = trainer.agent.config.batch_size
    for i in range(2):
        state, seed_metrics = train(keys[i : i + 1])
        # A vmap of another width batches the matmuls differently, so float sums may be reassociated: equal up to
        # rounding, not bit for bit (and an accuracy may count one sample of the 4 × 32 differently).
        for name, values in seed_metrics.items():
            atol = 1.0 / batch_size if "accuracy" in name else 1e-6
            np.testing.assert_allclose(metrics[name][i], values[0], rtol=1e-3, atol=atol, err_msg=name)
        for got, want in zip(jax.tree.leaves(states), jax.tree.leaves(state), strict=True):
            np.testing.assert_allclose(got[i], want[0], rtol=1e-3, atol=1e-5)
    assert not np.allclose(metrics["critic/loss"][0], metrics["critic/loss"][1])


def test_cli_run_equals_make_train(tiny):
    """The runner is only the shell: its checkpointed state and logged training metrics are make_train's (the same
    random draws bit for bit; floats equal up to the rounding of XLA compiling one program instead of one per
    epoch)."""
    args, trainer, train = tiny
    assert main(args) == 0
    cfg = trainer.config
    keys = runner.seed_keys(cfg.seed, cfg.num_seeds)
    state, metrics = train(keys)
    _, restored = runner.restore_state(trainer, keys, Path(args.run_dir) / "checkpoints")
    for got, want in zip(jax.tree.leaves(restored), jax.tree.leaves(state), strict=True):
        if np.issubdtype(want.dtype, np.inexact):
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
        else:  # PRNG keys, step and epoch counters, the replay's episode bookkeeping
            np.testing.assert_array_equal(got, want)
    assert int(restored.epoch[0]) == cfg.num_epochs
    rows = runner.read_metrics(Path(args.run_dir))
    assert [r["epoch"] for r in rows] == [2, 4]
    metrics = jax.device_get(metrics)
    for row in rows:  # each row averages the training metrics of the epochs since the previous one
        window = slice(row["epoch"] - cfg.epochs_per_eval, row["epoch"])
        for name in ("critic/loss", "actor/loss", "critic/accuracy", "train/episodes", "params/global_norm"):
            mean = np.mean(metrics[name][:, window].T, axis=0)  # [epochs, seeds] -> [seeds], as the runner does
            assert row[name] == pytest.approx(runner.summarise({name: mean})[name], rel=1e-5), name
