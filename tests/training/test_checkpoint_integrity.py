"""Corrupt, partial and missing checkpoints: detected, skipped with a message, or a clear error."""

import dataclasses
import json
import shutil

import pytest

from depthrl.cli import main as cli_main
from depthrl.errors import ConfigError
from depthrl.training import checkpoint as ckpt
from depthrl.training import runner
from depthrl.training.command import run as main
from depthrl.training.registry import AGENTS
from tiny_runs import NUM_EPOCHS, differences

Args = AGENTS["crl"].args  # the flags of `depthrl train crl`

NEWEST, PREVIOUS, OLDEST = (f"epoch_{e:08d}" for e in (NUM_EPOCHS, NUM_EPOCHS - 2, NUM_EPOCHS - 4))


def _largest_data_file(checkpoint):
    files = [p for p in (checkpoint / "state").rglob("*") if p.is_file()]
    return max(files, key=lambda p: p.stat().st_size)


def _truncate(checkpoint):
    path = _largest_data_file(checkpoint)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _flip_one_byte(checkpoint):
    path = _largest_data_file(checkpoint)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def _delete_manifest(checkpoint):
    (checkpoint / "manifest.json").unlink()


def _delete_a_file(checkpoint):
    (checkpoint / "state" / "_METADATA").unlink()


def _add_a_file(checkpoint):
    (checkpoint / "state" / "extra").write_bytes(b"not written by depthrl")


def _manifest_of_another_epoch(checkpoint):
    manifest = json.loads((checkpoint / "manifest.json").read_text())
    (checkpoint / "manifest.json").write_text(json.dumps({**manifest, "epoch": 1}))


CORRUPTIONS = {
    "truncated file": (_truncate, "checksum mismatch"),
    "altered byte": (_flip_one_byte, "checksum mismatch"),
    "missing manifest": (_delete_manifest, "no manifest.json"),
    "missing file": (_delete_a_file, "missing files"),
    "unexpected file": (_add_a_file, "files not in the manifest"),
    "manifest of another checkpoint": (_manifest_of_another_epoch, "is for epoch 1"),
}


@pytest.mark.parametrize("corruption", list(CORRUPTIONS))
def test_corruption_is_detected_and_the_previous_checkpoint_used(reference_copy, corruption):
    damage, problem = CORRUPTIONS[corruption]
    checkpoints = reference_copy / "checkpoints"
    assert ckpt.verify(checkpoints / NEWEST) is None
    damage(checkpoints / NEWEST)
    assert problem in ckpt.verify(checkpoints / NEWEST)
    warnings = []
    assert ckpt.latest_good(checkpoints, warn=warnings.append) == checkpoints / PREVIOUS
    assert len(warnings) == 1 and NEWEST in warnings[0] and problem in warnings[0]


def test_resume_falls_back_past_a_truncated_checkpoint_and_matches_uninterrupted(reference, reference_copy, capsys):
    args, _, reference_rows = reference
    _truncate(reference_copy / "checkpoints" / NEWEST)
    assert main(dataclasses.replace(args, resume=str(reference_copy))) == 0
    captured = capsys.readouterr()
    assert f"checkpoint {NEWEST} is corrupt (checksum mismatch" in captured.err
    assert f"from checkpoint {PREVIOUS}" in captured.out
    assert differences(reference_rows, runner.read_metrics(reference_copy)) == []
    assert ckpt.verify(reference_copy / "checkpoints" / NEWEST) is None  # rewritten whole


def test_no_intact_checkpoint_is_a_clear_error_naming_resume(reference, reference_copy, capsys):
    args, _, _ = reference
    for damage, name in zip((_truncate, _flip_one_byte, _delete_manifest), (NEWEST, PREVIOUS, OLDEST), strict=True):
        damage(reference_copy / "checkpoints" / name)
    metrics_before = (reference_copy / "metrics.jsonl").read_text()
    with pytest.raises(ConfigError, match=r"--resume=.* none of its 3 checkpoint\(s\) is intact"):
        main(dataclasses.replace(args, resume=str(reference_copy)))
    assert capsys.readouterr().err.count("is corrupt") == 3
    assert (reference_copy / "metrics.jsonl").read_text() == metrics_before  # nothing touched
    # The command line says the same and exits 2.
    assert cli_main(["train", "crl", "--resume", str(reference_copy), "--no-progress", "--no-plots"]) == 2
    assert "--resume" in capsys.readouterr().err


def test_partial_writes_of_a_killed_run_are_ignored_and_removed(reference, reference_copy, capsys):
    """A kill mid-checkpoint-write leaves `.tmp_epoch_*` (and mid-rotation `.tmp_delete_*`), and metrics rows
    (one torn) past the last complete checkpoint: resume ignores and removes them and redoes those epochs."""
    args, _, reference_rows = reference
    checkpoints = reference_copy / "checkpoints"
    (checkpoints / NEWEST).rename(checkpoints / f".tmp_{NEWEST}")
    (checkpoints / f".tmp_{NEWEST}" / "manifest.json").unlink()  # killed before the manifest and the rename
    _truncate(checkpoints / f".tmp_{NEWEST}")
    shutil.copytree(checkpoints / OLDEST, checkpoints / f".tmp_delete_epoch_{NUM_EPOCHS - 6:08d}")
    with open(reference_copy / "metrics.jsonl", "a") as f:
        f.write('{"epoch": 13, "eval/succ')  # torn
    assert [ckpt.epoch_of(p) for p in ckpt.list_checkpoints(checkpoints)] == [NUM_EPOCHS - 4, NUM_EPOCHS - 2]

    assert main(dataclasses.replace(args, resume=str(reference_copy))) == 0
    captured = capsys.readouterr()
    assert "removed the partial checkpoint write(s)" in captured.err and f".tmp_{NEWEST}" in captured.err
    assert f"from checkpoint {PREVIOUS}" in captured.out
    assert not [p for p in checkpoints.iterdir() if p.name.startswith(".tmp_")]
    assert differences(reference_rows, runner.read_metrics(reference_copy)) == []
    lines = (reference_copy / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [r["epoch"] for r in reference_rows]


def test_run_killed_before_its_first_checkpoint_restarts_from_scratch(reference, reference_copy, capsys):
    _, _, reference_rows = reference
    shutil.rmtree(reference_copy / "checkpoints")
    (reference_copy / "metrics.jsonl").write_text("")
    config = json.loads((reference_copy / "config.json").read_text())
    config["train"]["total_env_steps"] //= 3  # the first third of the reference run (training is causal)
    (reference_copy / "config.json").write_text(json.dumps(config))
    assert main(Args(resume=str(reference_copy), progress=False, plots=False)) == 0
    assert "no checkpoint yet: training from the beginning" in capsys.readouterr().err
    rows = runner.read_metrics(reference_copy)
    assert [r["epoch"] for r in rows] == [2, 4]
    assert differences(reference_rows[:2], rows) == []


def test_torn_last_metrics_line_is_dropped_by_the_reader(tmp_path):
    rows = [{"epoch": 2, "x": 1.5}, {"epoch": 4, "x": 2.5}]
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows) + '{"epoch": 6, "x')
    assert runner.read_metrics(tmp_path) == rows


def test_rotation_never_leaves_a_half_deleted_checkpoint(tmp_path):
    """Old checkpoints are renamed to `.tmp_delete_*` before deletion; names that are not `epoch_` + 8 digits
    are not checkpoints."""
    import numpy as np

    state = {"w": np.arange(4.0, dtype=np.float32)}
    for epoch in (1, 2, 3):
        ckpt.save(tmp_path, epoch, state, keep=2)
    (tmp_path / "epoch_backup").mkdir()
    assert [p.name for p in ckpt.list_checkpoints(tmp_path)] == ["epoch_00000002", "epoch_00000003"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["epoch_00000002", "epoch_00000003", "epoch_backup"]
    np.testing.assert_array_equal(ckpt.restore(tmp_path / "epoch_00000003", state)["w"], state["w"])


def test_zero_size_arrays_round_trip(tmp_path):
    """An MJX pipeline state holds an empty actuator-activation array (`act`, shape [envs, 0]); orbax refuses
    zero-size arrays, so they are stored as one element and restored to the target's empty shape."""
    import numpy as np

    state = {"w": np.arange(3.0, dtype=np.float32), "act": np.zeros((4, 0), np.float32), "n": np.zeros((0,), np.int32)}
    path = ckpt.save(tmp_path, 1, state)
    assert ckpt.verify(path) is None
    restored = ckpt.restore(path, state)
    np.testing.assert_array_equal(restored["w"], state["w"])
    assert restored["act"].shape == (4, 0) and restored["act"].dtype == np.float32
    assert restored["n"].shape == (0,) and restored["n"].dtype == np.int32


def test_checkpoints_written_from_two_threads_at_once_all_complete(tmp_path):
    """The runs of a group each write from their own background thread. Two orbax saves at once sometimes failed
    creating their temporary folder (FileExistsError; 1 round in 40 of this loop without the lock in
    checkpoint._write_arrays): now every write completes and restores."""
    import threading

    import numpy as np

    state = {"a": np.arange(100, dtype=np.float32), "b": np.ones((3, 4), np.int32)}
    errors = []

    def write(name, epoch):
        try:
            ckpt.write(tmp_path / name, epoch, state, keep=2)
        except Exception as err:  # noqa: BLE001  (collected, reported by the assert)
            errors.append(repr(err))

    for epoch in range(1, 61):
        threads = [threading.Thread(target=write, args=(name, epoch)) for name in ("a", "b")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert errors == []
    for name in ("a", "b"):
        assert [ckpt.epoch_of(p) for p in ckpt.list_checkpoints(tmp_path / name)] == [59, 60]
        restored = ckpt.restore(ckpt.list_checkpoints(tmp_path / name)[-1], state)
        np.testing.assert_array_equal(restored["a"], state["a"])


def test_a_checkpoint_from_before_an_empty_field_existed_restores(tmp_path):
    """`TrainState.hparams` (None in a plain run) was added after runs had been checkpointed: a checkpoint without
    the field restores into today's state with the field empty; one that has it (None) restores as before; a
    missing array is still refused."""
    from typing import Any

    import numpy as np
    from flax import struct

    @struct.dataclass
    class Before:
        w: Any
        inner: Any

    @struct.dataclass
    class After:
        w: Any
        inner: Any
        hparams: Any = None

    w, inner = np.arange(3.0, dtype=np.float32), {"b": np.ones((2,), np.int32), "c": [np.zeros((1,), np.float32)]}
    old = ckpt.save(tmp_path / "old", 1, Before(w=w, inner=inner))
    restored = ckpt.restore(old, After(w=w, inner=inner))
    assert isinstance(restored, After) and restored.hparams is None
    np.testing.assert_array_equal(restored.w, w)
    np.testing.assert_array_equal(restored.inner["b"], inner["b"])
    np.testing.assert_array_equal(restored.inner["c"][0], inner["c"][0])
    new = ckpt.save(tmp_path / "new", 1, After(w=w * 2, inner=inner))
    np.testing.assert_array_equal(ckpt.restore(new, After(w=w, inner=inner)).w, w * 2)
    with pytest.raises(Exception):  # noqa: B017  (orbax's own error type): an array the checkpoint lacks
        ckpt.restore(old, After(w=w, inner=inner, hparams={"lr": np.zeros((1,), np.float32)}))
