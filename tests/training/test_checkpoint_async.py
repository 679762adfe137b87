"""Checkpoints written off the training thread: a consistent host snapshot, a failed write that keeps the last
good checkpoint and says how to resume, free-disk checks, and checkpoints without the replay buffer."""

import dataclasses
import errno
import math
import threading

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from depthrl.cli import main as cli_main
from depthrl.errors import CheckpointError, ConfigError
from depthrl.training import checkpoint as ckpt
from depthrl.training import runner, runs
from depthrl.training.command import run as main
from tiny_runs import NUM_EPOCHS, cli_flags, differences, reference_args, tiny_crl_args


def _failing_write(monkeypatch, failing_epoch: int) -> None:
    """The writer of checkpoint `failing_epoch` writes its arrays, then the disk is full."""
    real = ckpt._write_arrays

    def write(directory, host_state):
        real(directory, host_state)
        if directory.parent.name.endswith(f"epoch_{failing_epoch:08d}"):
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(ckpt, "_write_arrays", write)


def test_save_returns_while_the_write_runs_and_keeps_the_state_of_its_call(tmp_path, monkeypatch):
    """`save` returns while the background write is held; the next 'epoch' then overwrites the donated device
    buffers; the checkpoint still holds the values at the time of `save`."""
    started, release = threading.Event(), threading.Event()
    real = ckpt._write_arrays

    def held_write(directory, host_state):
        started.set()
        assert release.wait(60)
        real(directory, host_state)

    monkeypatch.setattr(ckpt, "_write_arrays", held_write)
    state = {"w": jnp.arange(1000, dtype=jnp.float32), "n": jnp.int32(7)}
    expected = jax.tree.map(np.array, state)
    saver = ckpt.AsyncCheckpointer(tmp_path, keep=2, resume_hint="--resume RUN")
    saver.save(1, state, {"omitted": []})
    assert started.wait(60)  # the write has begun and is held ...
    assert not (tmp_path / "epoch_00000001").exists() and saver.last_saved is None  # ... and save has returned
    next_epoch = jax.jit(lambda s: jax.tree.map(lambda x: x * 0 - 1, s), donate_argnums=0)
    state = next_epoch(state)  # reuses the donated buffers of the saved state
    jax.block_until_ready(state)
    first_copy = saver._host
    release.set()
    saver.save(2, state)  # waits for checkpoint 1 first, then refills its host copy (CPU)
    assert ckpt.verify(tmp_path / "epoch_00000001") is None and saver.last_saved == 1
    assert saver._host is first_copy and saver.snapshot_s >= 0 and saver.wait_s >= 0
    saver.close()
    assert saver.last_saved == 2
    restored = ckpt.restore(tmp_path / "epoch_00000001", expected)
    np.testing.assert_array_equal(restored["w"], expected["w"])
    assert int(restored["n"]) == 7
    np.testing.assert_array_equal(ckpt.restore(tmp_path / "epoch_00000002", expected)["w"], -np.ones(1000))
    assert ckpt.read_manifest(tmp_path / "epoch_00000001") == {"omitted": [], "epoch": 1}


def test_a_failed_write_keeps_the_earlier_checkpoints_and_says_how_to_resume(tmp_path, monkeypatch):
    _failing_write(monkeypatch, 3)
    saver = ckpt.AsyncCheckpointer(tmp_path, keep=2, resume_hint="--resume RUN")
    state = {"w": jnp.ones(64)}
    for epoch in (1, 2, 3):
        saver.save(epoch, state)
    with pytest.raises(CheckpointError) as err:
        saver.close()
    message = str(err.value)
    assert "writing checkpoint epoch 3 failed (OSError: [Errno 28] No space left on device)" in message
    assert "last good checkpoint is epoch 2" in message and "--resume RUN" in message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["epoch_00000001", "epoch_00000002"]  # no partial left
    assert all(ckpt.verify(p) is None for p in ckpt.list_checkpoints(tmp_path))


def test_a_checkpoint_that_does_not_fit_on_disk_is_refused_before_writing(tmp_path, monkeypatch):
    state = {"w": jnp.ones((1024, 256))}  # 1 MiB
    monkeypatch.setattr(ckpt, "free_disk_bytes", lambda directory: ckpt.disk_needed(ckpt.nbytes(state)) - 1)
    saver = ckpt.AsyncCheckpointer(tmp_path, keep=2, resume_hint="--resume RUN", last_saved=4)
    with pytest.raises(CheckpointError) as err:
        saver.save(5, state)
    message = str(err.value)
    assert "checkpoint epoch 5 was not written: it needs ≈ 2.0 MiB" in message
    assert "last good checkpoint is epoch 4" in message and "--no-checkpoint-buffer" in message
    assert "--resume RUN" in message and list(tmp_path.iterdir()) == []
    saver.close()


def test_a_run_whose_disk_cannot_hold_a_checkpoint_is_refused_at_start(tmp_path, monkeypatch):
    monkeypatch.setattr(ckpt, "free_disk_bytes", lambda directory: 1000)
    with pytest.raises(ConfigError, match=r"--run-dir=.* its disk has 0.0 MiB free but one checkpoint needs"):
        main(tiny_crl_args(tmp_path / "run"))
    assert not (tmp_path / "run").exists()


def test_disk_full_midway_stops_the_run_keeps_the_last_good_checkpoint_and_resume_is_exact(
        reference, tmp_path, monkeypatch, capsys):
    """The write of checkpoint 6 fails after its arrays are on disk: the run stops (exit 4) saying what failed
    and how to resume; checkpoints 2 and 4 are intact; --resume then gives the uninterrupted run bit for bit."""
    _, _, reference_rows = reference
    run_dir = tmp_path / "run"
    _failing_write(monkeypatch, 6)
    assert cli_main(["train", "crl", *cli_flags(reference_args(run_dir))]) == 4
    err = capsys.readouterr().err
    assert "checkpoint failed: writing checkpoint epoch 6 failed (OSError: [Errno 28] No space left on device)" in err
    assert "The last good checkpoint is epoch 4" in err and f"--resume {run_dir}" in err
    checkpoints = run_dir / "checkpoints"
    assert sorted(p.name for p in checkpoints.iterdir()) == ["epoch_00000002", "epoch_00000004"]
    assert all(ckpt.verify(p) is None for p in ckpt.list_checkpoints(checkpoints))
    assert max(r["epoch"] for r in runner.read_metrics(run_dir)) < NUM_EPOCHS  # it stopped

    monkeypatch.undo()
    assert cli_main(["train", "crl", "--resume", str(run_dir), "--no-progress", "--no-plots"]) == 0
    assert "from checkpoint epoch_00000004" in capsys.readouterr().out
    assert differences(reference_rows, runner.read_metrics(run_dir)) == []


def test_checkpoints_without_the_replay_buffer(reference, tmp_path, capsys):
    """--no-checkpoint-buffer: smaller checkpoints marked not bit-exact, a note at save and a warning at resume;
    the resumed run starts from an empty buffer and finishes."""
    args = dataclasses.replace(tiny_crl_args(tmp_path / "run"), checkpoint_buffer=False)
    assert main(args) == 0
    assert "checkpoints leave out the replay buffer" in capsys.readouterr().err
    checkpoints = tmp_path / "run" / "checkpoints"
    newest = checkpoints / "epoch_00000004"
    assert ckpt.read_manifest(newest) == {"omitted": ["buffer"], "bit_exact_resume": False, "epoch": 4}

    def stored_bytes(path):  # bytes of the arrays orbax stored (file sizes vary with compression)
        import orbax.checkpoint as ocp

        checkpointer = ocp.StandardCheckpointer()
        tree = checkpointer.metadata((path / "state").absolute()).item_metadata.tree
        checkpointer.close()
        leaves = jax.tree.leaves(tree, is_leaf=lambda x: hasattr(x, "shape"))
        return sum(math.prod(leaf.shape) * np.dtype(leaf.dtype).itemsize for leaf in leaves)

    _, reference_dir, _ = reference
    buffer_bytes = (4000 // 16) * 16 * (4 + 2) * 4  # the observations and actions alone
    full = stored_bytes(reference_dir / "checkpoints" / f"epoch_{NUM_EPOCHS:08d}")
    assert stored_bytes(newest) <= full - buffer_bytes
    _, trainer, state = runs.load_run(tmp_path / "run")  # eval/render restore it with an empty buffer
    assert int(np.asarray(state.buffer.total_rows)[0]) == 0
    assert not np.any(np.asarray(state.buffer.data["state"])) and int(np.asarray(state.epoch)[0]) == 4
    loaded = runs.load(tmp_path / "run", checkpoint=2)  # `depthrl eval/render --checkpoint 2`
    assert loaded.epoch == 2 and int(np.asarray(loaded.state.buffer.total_rows)[0]) == 0

    ckpt._remove(newest)
    assert main(dataclasses.replace(args, resume=str(tmp_path / "run"))) == 0
    captured = capsys.readouterr()
    assert "epoch_00000002 was saved without the replay buffer" in captured.err
    assert "not bit-exact" in captured.err and "from checkpoint epoch_00000002" in captured.out
    assert [r["epoch"] for r in runner.read_metrics(tmp_path / "run")] == [2, 4]
