"""Checkpoints: orbax array storage + a JSON manifest with SHA-256 of every file. Never pickle.

A checkpoint is complete only once its directory carries its final name: it is written under a temporary
name, its files are hashed into `manifest.json`, then the directory is renamed (atomic on one filesystem).
Old checkpoints are likewise renamed to a temporary name before they are deleted, so a process killed at
any moment leaves only complete `epoch_*` checkpoints and `.tmp_*` leftovers (ignored, and removed by
`clean_partial`). Loading verifies the hashes, so a truncated or altered checkpoint is detected and skipped.

`AsyncCheckpointer` keeps all of that off the training thread: the training thread only copies the state to
host memory (a consistent snapshot, before the next epoch may overwrite the device buffers); writing,
hashing, the rename and the rotation run on one background thread, one checkpoint at a time.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import logging
import math
import os
import re
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from depthrl.errors import CheckpointError

_PREFIX = "epoch_"
_NAME = re.compile(r"epoch_(\d{8})")
_TMP = ".tmp_"
_MANIFEST = "manifest.json"
# Room left on top of the arrays' bytes when checking free disk (orbax metadata, the manifest).
DISK_MARGIN = 1.02
DISK_MARGIN_BYTES = 1 << 20


def _quiet_orbax() -> None:
    logging.getLogger("absl").setLevel(logging.ERROR)


def _hash_tree(directory: Path) -> dict[str, str]:
    hashes = {}
    for path in sorted(directory.rglob("*")):
        if path.is_file() and path.name != _MANIFEST:
            digest = hashlib.sha256()
            with open(path, "rb") as f:  # in chunks: a deep network's checkpoint need not fit in memory twice
                for chunk in iter(lambda: f.read(1 << 24), b""):
                    digest.update(chunk)
            hashes[str(path.relative_to(directory))] = digest.hexdigest()
    return hashes


def nbytes(tree: Any) -> int:
    """Bytes of the arrays of `tree` (device or host arrays): about what a checkpoint of it takes on disk."""
    return sum(int(np.prod(x.shape)) * np.dtype(x.dtype).itemsize for x in jax.tree.leaves(tree))


def snapshot(state: Any, reuse: Any = None) -> Any:
    """A host copy of `state` that nothing else aliases. On CPU, `jax.device_get` returns views of the device
    buffers, which a donated next epoch may reuse: they are copied, into `reuse` (an earlier snapshot no
    longer in use) when its arrays match. Filling existing pages is far cheaper than fresh ones (512 MiB:
    0.13-0.17 s against 0.4-4 s on the 2-core dev CPU). Elsewhere the transfer already copies."""
    host = jax.device_get(state)
    if jax.devices()[0].platform != "cpu":
        return host
    if reuse is not None and jax.tree.structure(reuse) == jax.tree.structure(host):
        pairs = list(zip(jax.tree.leaves(reuse), jax.tree.leaves(host), strict=True))
        if all(isinstance(d, np.ndarray) and d.shape == np.shape(s) and d.dtype == np.asarray(s).dtype
               for d, s in pairs):
            for destination, source in pairs:
                np.copyto(destination, source)
            return reuse
    return jax.tree.map(lambda x: np.array(x, copy=True), host)


def free_disk_bytes(directory: Path) -> int:
    """Free bytes on the filesystem of `directory` (or of its nearest existing parent)."""
    path = Path(directory).absolute()
    while not path.exists():
        path = path.parent
    return shutil.disk_usage(path).free


def disk_needed(num_bytes: int) -> int:
    """Free disk to require before writing a checkpoint of `num_bytes` array bytes."""
    return int(num_bytes * DISK_MARGIN) + DISK_MARGIN_BYTES


def save(checkpoint_dir: Path, epoch: int, state: Any, keep: int = 3, metadata: dict | None = None) -> Path:
    """Write `state` (a pytree of arrays) as checkpoint `epoch` on this thread; keep the newest `keep`.
    `metadata` (JSON) is stored in the manifest next to the checksums."""
    return write(checkpoint_dir, epoch, snapshot(state), keep, metadata)


def write(checkpoint_dir: Path, epoch: int, host_state: Any, keep: int = 3, metadata: dict | None = None) -> Path:
    """Write a host snapshot as checkpoint `epoch`: arrays, then the manifest, then the atomic rename, then the
    rotation. If any step fails, the temporary directory is removed (best effort) and the error re-raised:
    the completed checkpoints are untouched."""
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    final = checkpoint_dir / f"{_PREFIX}{epoch:08d}"
    tmp = checkpoint_dir / f"{_TMP}{_PREFIX}{epoch:08d}"
    for stale in (tmp, final):
        if stale.exists():
            _remove(stale)
    try:
        _write_arrays(tmp / "state", host_state)
        _write_manifest(tmp, {**(metadata or {}), "epoch": epoch, "files": _hash_tree(tmp)})
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    for old in list_checkpoints(checkpoint_dir)[:-keep] if keep > 0 else []:
        _remove(old)
    return final


def _empty(x: Any) -> bool:
    """Orbax refuses zero-size arrays (an MJX pipeline state carries an empty actuator-activation array `act`):
    each is stored as one element of its dtype (`_storable`), and `restore` gives back the empty array its
    target names."""
    return math.prod(x.shape) == 0


def _storable(tree: Any) -> Any:
    return jax.tree.map(lambda x: np.zeros((1,), x.dtype) if _empty(x) else x, tree)


# One orbax save at a time in this process: the runs of a group (`runner.train_group`) each have a background
# writer, and two orbax saves in two threads at once sometimes failed creating their temporary directory
# (FileExistsError on `.tmp_epoch_*/state.orbax-checkpoint-tmp`, seen in a test of a two-run group).
_ORBAX_LOCK = threading.Lock()


def _write_arrays(directory: Path, host_state: Any) -> None:
    import orbax.checkpoint as ocp

    _quiet_orbax()
    with _ORBAX_LOCK:
        checkpointer = ocp.StandardCheckpointer()
        try:
            checkpointer.save(directory.absolute(), _storable(host_state))
            checkpointer.wait_until_finished()
        finally:
            checkpointer.close()


def _write_manifest(directory: Path, manifest: dict) -> None:
    (directory / _MANIFEST).write_text(json.dumps(manifest, indent=1))


def read_manifest(path: Path) -> dict:
    """The manifest of checkpoint `path` without its checksums: epoch and the metadata given at save."""
    manifest = json.loads((path / _MANIFEST).read_text())
    return {k: v for k, v in manifest.items() if k != "files"}


class AsyncCheckpointer:
    """Writes checkpoints on a background thread, one at a time.

    `save` waits for the previous checkpoint, checks free disk, copies the state to host memory (on the calling
    thread, so the snapshot is consistent) and returns; the write, hashing, rename and rotation run behind it.
    A failed write raises `CheckpointError` at the next `poll`, `save` or `wait`; the checkpoints written
    before it are untouched. `wait` before reporting which checkpoint is the last good one, and at exit.
    """

    def __init__(self, checkpoint_dir: Path, keep: int, resume_hint: str, last_saved: int | None = None):
        self.checkpoint_dir = checkpoint_dir
        self.keep = keep
        self.resume_hint = resume_hint  # how to continue the run, for error messages
        self.last_saved = last_saved  # epoch of the newest completed checkpoint
        self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="checkpoint")
        self._pending: tuple[int, concurrent.futures.Future] | None = None
        self.wait_s = self.snapshot_s = 0.0  # of the last save
        self._host: Any = None  # the last snapshot, refilled by the next save on CPU

    def save(self, epoch: int, state: Any, metadata: dict | None = None) -> None:
        t0 = time.perf_counter()
        self.wait()
        self.wait_s = time.perf_counter() - t0  # held by the previous write (0 when it had finished)
        needed, free = disk_needed(nbytes(state)), free_disk_bytes(self.checkpoint_dir)
        if free < needed:
            raise CheckpointError(
                f"checkpoint epoch {epoch} was not written: it needs ≈ {needed / 2**20:.1f} MiB but the disk of "
                f"{self.checkpoint_dir} has {free / 2**20:.1f} MiB free. {self._last_good()} Free disk space "
                f"(or lower --keep-checkpoints, or pass --no-checkpoint-buffer to leave the replay buffer out), "
                f"then continue with {self.resume_hint}")
        t1 = time.perf_counter()
        host = self._host = snapshot(state, reuse=self._host)  # the previous write is done with it
        self.snapshot_s = time.perf_counter() - t1  # the host copy: what a save costs the training thread
        self._pending = (epoch, self._executor.submit(write, self.checkpoint_dir, epoch, host, self.keep, metadata))

    def poll(self) -> None:
        """Raise `CheckpointError` if the checkpoint in progress has failed; never waits."""
        if self._pending is not None and self._pending[1].done():
            self.wait()

    def wait(self) -> None:
        """Block until the checkpoint in progress is complete; `CheckpointError` if it failed."""
        if self._pending is None:
            return
        epoch, future = self._pending
        self._pending = None
        try:
            future.result()
        except Exception as err:
            raise CheckpointError(
                f"writing checkpoint epoch {epoch} failed ({type(err).__name__}: {err}); its partial files were "
                f"removed. {self._last_good()} Fix the cause (e.g. free disk space), then continue with "
                f"{self.resume_hint}") from err
        self.last_saved = epoch

    def wait_quietly(self, warn: Callable[[str], Any] = print) -> None:
        """`wait`, reporting a failure through `warn` instead of raising (while another error propagates)."""
        try:
            self.wait()
        except CheckpointError as err:
            warn(str(err))

    def close(self) -> None:
        """Wait for the checkpoint in progress and stop the background thread."""
        try:
            self.wait()
        finally:
            self._executor.shutdown(wait=True)
            self._host = None

    def _last_good(self) -> str:
        if self.last_saved is None:
            return "The run has no complete checkpoint yet."
        return f"The last good checkpoint is epoch {self.last_saved}."


def _remove(path: Path) -> None:
    """Delete a checkpoint directory; renamed first, so a kill mid-delete leaves a `.tmp_*`, never a
    half-deleted `epoch_*` that looks like a checkpoint."""
    doomed = path if path.name.startswith(_TMP) else path.with_name(f"{_TMP}delete_{path.name}")
    if doomed != path:
        if doomed.exists():
            shutil.rmtree(doomed)
        os.replace(path, doomed)
    shutil.rmtree(doomed, ignore_errors=True)


def clean_partial(checkpoint_dir: Path) -> list[str]:
    """Remove the `.tmp_*` leftovers of writes or deletions cut short by a kill; returns their names."""
    if not checkpoint_dir.exists():
        return []
    removed = []
    for path in checkpoint_dir.iterdir():
        if path.name.startswith(_TMP):
            shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
            removed.append(path.name)
    return sorted(removed)


def list_checkpoints(checkpoint_dir: Path) -> list[Path]:
    """Completed checkpoints, oldest first."""
    if not checkpoint_dir.exists():
        return []
    return sorted(p for p in checkpoint_dir.iterdir() if p.is_dir() and _NAME.fullmatch(p.name))


def epoch_of(path: Path) -> int:
    return int(path.name[len(_PREFIX):])


def verify(path: Path) -> str | None:
    """None if the checkpoint's files match its manifest, else what is wrong."""
    manifest_path = path / _MANIFEST
    if not manifest_path.exists():
        return "no manifest.json"
    try:
        manifest = json.loads(manifest_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        return "manifest.json is not valid JSON"
    expected = manifest.get("files") if isinstance(manifest, dict) else None
    if not isinstance(expected, dict) or not expected:
        return "manifest.json lists no files"
    if manifest.get("epoch") != epoch_of(path):
        return f"manifest.json is for epoch {manifest.get('epoch')!r}, not {epoch_of(path)}"
    actual = _hash_tree(path)
    missing = sorted(set(expected) - set(actual))
    if missing:
        return f"missing files: {missing[:3]}"
    unexpected = sorted(set(actual) - set(expected))
    if unexpected:
        return f"files not in the manifest: {unexpected[:3]}"
    changed = sorted(name for name in expected if actual.get(name) != expected[name])
    if changed:
        return f"checksum mismatch in {changed[:3]}"
    return None


def latest_good(checkpoint_dir: Path, warn=print) -> Path | None:
    """The newest checkpoint whose checksums verify; corrupt ones are reported through `warn`."""
    for path in reversed(list_checkpoints(checkpoint_dir)):
        problem = verify(path)
        if problem is None:
            return path
        warn(f"checkpoint {path.name} is corrupt ({problem}); falling back to an earlier one")
    return None


def restore_latest(checkpoint_dir: Path, target: Any, warn=print,
                   verified: Path | None = None) -> tuple[Path, Any] | None:
    """(path, state) of the newest checkpoint that verifies and restores into `target`'s structure, or None.

    `target` is a pytree of arrays / ShapeDtypeStructs, or a function of the checkpoint's manifest (`read_manifest`)
    that returns one (a checkpoint may leave parts of the state out). `verified`: a checkpoint `latest_good`
    has just checked: newer ones (found corrupt) are skipped and its own hashes are not computed again.
    A checkpoint that passes its checksums but cannot be restored (e.g. written by another version) is
    reported through `warn` and skipped like a corrupt one.
    """
    paths = list_checkpoints(checkpoint_dir)
    if verified is not None:
        paths = [p for p in paths if p <= verified]
    for path in reversed(paths):
        problem = None if path == verified else verify(path)
        if problem is None:
            try:
                return path, restore(path, target(read_manifest(path)) if callable(target) else target)
            except Exception as err:  # orbax raises many types; any of them means "not usable"
                problem = f"cannot be restored: {type(err).__name__}: {str(err)[:200]}"
        warn(f"checkpoint {path.name} is corrupt ({problem}); falling back to an earlier one")
    return None


def restore(path: Path, target: Any) -> Any:
    """Restore into the structure/dtypes/shapes of `target` (a pytree of arrays or ShapeDtypeStructs)."""
    import orbax.checkpoint as ocp

    _quiet_orbax()
    abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct((1,) if _empty(x) else x.shape, x.dtype), target)
    checkpointer = ocp.StandardCheckpointer()
    try:
        restored = _restore_arrays(checkpointer, path / "state", abstract)
    finally:
        checkpointer.close()
    return jax.tree.map(lambda got, want: jnp.zeros(want.shape, want.dtype) if _empty(want) else got,
                        restored, target)


def _restore_arrays(checkpointer: Any, state_dir: Path, abstract: Any) -> Any:
    """Restore `state_dir` into `abstract`'s structure. An empty field of the target (None, e.g.
    `TrainState.hparams` of a plain run) that the checkpoint has no entry for (it was written before the field
    existed) is left out of the restore, done on orbax's nested dicts, and put back empty."""
    from orbax.checkpoint import tree as otree

    stored = json.loads((state_dir / "_METADATA").read_text()).get("tree_metadata", {})
    stored_keys = {tuple(k["key"] for k in entry["key_metadata"]) for entry in stored.values()}
    wanted = otree.serialize_tree(abstract, keep_empty_nodes=True)
    absent = []  # key path of each empty dict entry (a field) the checkpoint lacks

    def walk(node: Any, keys: tuple[str, ...]) -> None:
        if isinstance(node, list):
            for i, child in enumerate(node):
                walk(child, (*keys, str(i)))
        elif isinstance(node, dict):
            for k, child in node.items():
                if child is None and (*keys, str(k)) not in stored_keys:
                    absent.append((*keys, k))
                else:
                    walk(child, (*keys, str(k)))

    walk(wanted, ())
    if not absent:
        return checkpointer.restore(state_dir.absolute(), abstract)

    def holder(tree: Any, path: tuple) -> dict:  # the dict holding the entry at `path`
        for key in path[:-1]:
            tree = tree[int(key) if isinstance(tree, list) else key]
        return tree

    for path in absent:
        del holder(wanted, path)[path[-1]]
    restored = checkpointer.restore(state_dir.absolute(), wanted)
    for path in absent:
        holder(restored, path)[path[-1]] = None
    return otree.deserialize_tree(restored, abstract, keep_empty_nodes=True)
