"""JAX's persistent compilation cache: a second run with the same shapes loads its programs from disk
instead of recompiling them. On by default for the CLI, in a user cache folder.
"""

from __future__ import annotations

import os
from pathlib import Path


def default_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "depthrl" / "jax_compilation_cache"


def enable(directory: str | os.PathLike | None = None, min_compile_time_s: float = 0.5) -> Path:
    """Turn the cache on (idempotent). Programs that compiled faster than `min_compile_time_s` are not
    stored: loading them would cost about as much as compiling."""
    import jax

    path = Path(directory) if directory is not None else default_dir()
    path.mkdir(parents=True, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", min_compile_time_s)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return path
