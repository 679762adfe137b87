"""JAX's persistent compilation cache: a second run with the same shapes loads its programs from disk
instead of recompiling them. On by default for the CLI, in a user cache folder, capped in size.

The cap is JAX's own (`jax_compilation_cache_max_size`): each entry KEY-cache has a KEY-atime file holding
its last use (8 bytes, nanoseconds, little-endian), and storing a new entry first deletes the least recently
used ones until the folder fits. `enable` adds the atime files a cache written without a cap lacks (from
the entry's modification time) and evicts down to the cap at start, so lowering the cap takes effect at
once.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

DEFAULT_MAX_MB = 1024
_CACHE, _ATIME = "-cache", "-atime"


def default_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "depthrl" / "jax_compilation_cache"


def entries(path: Path) -> list[tuple[int, int, Path]]:
    """(last use in ns, size in bytes, file) of every cache entry, least recently used first; an entry
    without an atime file gets one from its modification time."""
    found = []
    for entry in path.glob(f"*{_CACHE}"):
        try:
            size = entry.stat().st_size
            atime = entry.with_name(entry.name.removesuffix(_CACHE) + _ATIME)
            if not atime.exists():
                atime.write_bytes(entry.stat().st_mtime_ns.to_bytes(8, "little"))
            found.append((int.from_bytes(atime.read_bytes(), "little"), size, entry))
        except OSError:  # removed by another process meanwhile
            continue
    return sorted(found)


def evict(path: Path, max_bytes: int) -> list[Path]:
    """Delete least-recently-used entries until the entries of `path` total at most `max_bytes`; returns
    the deleted entries."""
    import filelock

    # JAX's capped cache takes this lock around each write and its own eviction: holding it, no other process
    # sees an entry half written or half deleted.
    with filelock.FileLock(path / ".lockfile", timeout=60):
        found = entries(path)
        total = sum(size for _, size, _ in found)
        removed = []
        for _, size, entry in found:
            if total <= max_bytes:
                break
            for f in (entry, entry.with_name(entry.name.removesuffix(_CACHE) + _ATIME)):
                f.unlink(missing_ok=True)
            total -= size
            removed.append(entry)
    return removed


def touch(entry: Path, when_ns: int | None = None) -> None:
    """Mark a cache entry as used now (or at `when_ns`), as JAX does when it loads one."""
    atime = entry.with_name(entry.name.removesuffix(_CACHE) + _ATIME)
    atime.write_bytes((time.time_ns() if when_ns is None else when_ns).to_bytes(8, "little"))


def enable(directory: str | os.PathLike | None = None, min_compile_time_s: float = 0.5,
           max_mb: float = DEFAULT_MAX_MB) -> Path:
    """Turn the cache on (idempotent), capped at `max_mb` MiB. Programs that compiled faster than
    `min_compile_time_s` are not stored: loading them would cost about as much as compiling."""
    import jax

    path = Path(directory) if directory is not None else default_dir()
    path.mkdir(parents=True, exist_ok=True)
    max_bytes = int(max_mb * 2**20)
    evict(path, max_bytes)
    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", min_compile_time_s)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    jax.config.update("jax_compilation_cache_max_size", max_bytes)
    return path
