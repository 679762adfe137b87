"""Physics tasks of the 1000-layer paper on brax / MJX: Ant, Ant mazes, Humanoid, Humanoid mazes, arm.

Optional: the base install runs without brax (`pip install -e '.[physics]'` brings brax, mujoco and
mujoco-mjx). Only `catalog` (the static table of tasks: names, dims, descriptions) is imported by the
registry; the modules that import brax (`assets`, `locomotion`, `arm`) are imported when an env is built.
"""

from __future__ import annotations

import importlib.metadata

from depthrl.errors import ConfigError

INSTALL_COMMAND = "pip install -e '.[physics]'"


def available() -> bool:
    """True when brax, mujoco and mujoco-mjx are installed (read from package metadata, nothing imported)."""
    try:
        for distribution in ("brax", "mujoco", "mujoco-mjx"):
            importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def require(env_name: str) -> None:
    """Raise ConfigError naming --env and the install command when the physics extra is missing."""
    if not available():
        raise ConfigError("--env", env_name, f"needs the physics extra (brax, mujoco, mujoco-mjx), which is not "
                                             f"installed: run `{INSTALL_COMMAND}` (or `make test`)")
