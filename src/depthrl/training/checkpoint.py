"""Checkpoints: orbax array storage + a JSON manifest with SHA-256 of every file. Never pickle.

A checkpoint is complete only once its directory carries its final name: it is written under a temporary
name, its files are hashed into `manifest.json`, then the directory is renamed (atomic on one filesystem).
Old checkpoints are likewise renamed to a temporary name before they are deleted, so a process killed at
any moment leaves only complete `epoch_*` checkpoints and `.tmp_*` leftovers (ignored, and removed by
`clean_partial`). Loading verifies the hashes, so a truncated or altered checkpoint is detected and skipped.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
from pathlib import Path
from typing import Any

import jax

_PREFIX = "epoch_"
_NAME = re.compile(r"epoch_(\d{8})")
_TMP = ".tmp_"
_MANIFEST = "manifest.json"


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


def save(checkpoint_dir: Path, epoch: int, state: Any, keep: int = 3) -> Path:
    """Write `state` (a pytree of arrays) as checkpoint `epoch`; keep the newest `keep` checkpoints."""
    import orbax.checkpoint as ocp

    _quiet_orbax()
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    final = checkpoint_dir / f"{_PREFIX}{epoch:08d}"
    tmp = checkpoint_dir / f"{_TMP}{_PREFIX}{epoch:08d}"
    for stale in (tmp, final):
        if stale.exists():
            _remove(stale)
    checkpointer = ocp.StandardCheckpointer()
    checkpointer.save((tmp / "state").absolute(), jax.device_get(state))
    checkpointer.wait_until_finished()
    checkpointer.close()
    manifest = {"epoch": epoch, "files": _hash_tree(tmp)}
    (tmp / _MANIFEST).write_text(json.dumps(manifest, indent=1))
    os.replace(tmp, final)
    for old in list_checkpoints(checkpoint_dir)[:-keep] if keep > 0 else []:
        _remove(old)
    return final


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


def restore_latest(checkpoint_dir: Path, target: Any, warn=print) -> tuple[Path, Any] | None:
    """(path, state) of the newest checkpoint that verifies and restores into `target`'s structure, or None.

    A checkpoint that passes its checksums but cannot be restored (e.g. written by another version) is
    reported through `warn` and skipped like a corrupt one.
    """
    for path in reversed(list_checkpoints(checkpoint_dir)):
        problem = verify(path)
        if problem is None:
            try:
                return path, restore(path, target)
            except Exception as err:  # orbax raises many types; any of them means "not usable"
                problem = f"cannot be restored: {type(err).__name__}: {str(err)[:200]}"
        warn(f"checkpoint {path.name} is corrupt ({problem}); falling back to an earlier one")
    return None


def restore(path: Path, target: Any) -> Any:
    """Restore into the structure/dtypes/shapes of `target` (a pytree of arrays or ShapeDtypeStructs)."""
    import orbax.checkpoint as ocp

    _quiet_orbax()
    abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), target)
    checkpointer = ocp.StandardCheckpointer()
    restored = checkpointer.restore((path / "state").absolute(), abstract)
    checkpointer.close()
    return restored
