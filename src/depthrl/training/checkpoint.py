"""Checkpoints: orbax array storage + a JSON manifest with SHA-256 of every file. Never pickle.

A checkpoint is complete only once its directory carries its final name: it is written under a temporary
name, its files are hashed into `manifest.json`, then the directory is renamed (atomic on one filesystem).
Loading verifies the hashes, so a truncated or altered checkpoint is detected and skipped.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any

import jax

_PREFIX = "epoch_"
_MANIFEST = "manifest.json"


def _quiet_orbax() -> None:
    logging.getLogger("absl").setLevel(logging.ERROR)


def _hash_tree(directory: Path) -> dict[str, str]:
    hashes = {}
    for path in sorted(directory.rglob("*")):
        if path.is_file() and path.name != _MANIFEST:
            hashes[str(path.relative_to(directory))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return hashes


def save(checkpoint_dir: Path, epoch: int, state: Any, keep: int = 3) -> Path:
    """Write `state` (a pytree of arrays) as checkpoint `epoch`; keep the newest `keep` checkpoints."""
    import orbax.checkpoint as ocp

    _quiet_orbax()
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    final = checkpoint_dir / f"{_PREFIX}{epoch:08d}"
    tmp = checkpoint_dir / f".tmp_{_PREFIX}{epoch:08d}"
    for stale in (tmp, final):
        if stale.exists():
            shutil.rmtree(stale)
    checkpointer = ocp.StandardCheckpointer()
    checkpointer.save((tmp / "state").absolute(), jax.device_get(state))
    checkpointer.wait_until_finished()
    checkpointer.close()
    manifest = {"epoch": epoch, "files": _hash_tree(tmp)}
    (tmp / _MANIFEST).write_text(json.dumps(manifest, indent=1))
    os.replace(tmp, final)
    for old in list_checkpoints(checkpoint_dir)[:-keep] if keep > 0 else []:
        shutil.rmtree(old, ignore_errors=True)
    return final


def list_checkpoints(checkpoint_dir: Path) -> list[Path]:
    """Completed checkpoints, oldest first."""
    if not checkpoint_dir.exists():
        return []
    return sorted(p for p in checkpoint_dir.iterdir() if p.is_dir() and p.name.startswith(_PREFIX))


def epoch_of(path: Path) -> int:
    return int(path.name[len(_PREFIX):])


def verify(path: Path) -> str | None:
    """None if the checkpoint's files match its manifest, else what is wrong."""
    manifest_path = path / _MANIFEST
    if not manifest_path.exists():
        return "no manifest.json"
    try:
        manifest = json.loads(manifest_path.read_text())
    except json.JSONDecodeError:
        return "manifest.json is not valid JSON"
    actual = _hash_tree(path)
    expected = manifest.get("files", {})
    missing = sorted(set(expected) - set(actual))
    if missing:
        return f"missing files: {missing[:3]}"
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


def restore(path: Path, target: Any) -> Any:
    """Restore into the structure/dtypes/shapes of `target` (a pytree of arrays or ShapeDtypeStructs)."""
    import orbax.checkpoint as ocp

    _quiet_orbax()
    abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), target)
    checkpointer = ocp.StandardCheckpointer()
    restored = checkpointer.restore((path / "state").absolute(), abstract)
    checkpointer.close()
    return restored
