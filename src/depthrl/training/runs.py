"""Open a run directory for the tools: its config, trainer and a chosen checkpoint (JSON + arrays only)."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Any

from depthrl.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class LoadedRun:
    run_dir: Path
    args: Any  # the run's train command Args, from config.json
    trainer: Any
    state: Any  # TrainState with a leading seed axis
    epoch: int  # the checkpoint's epoch


def run_args(run_dir: Path) -> Any:
    """The Args stored in RUN_DIR/config.json (validated), without building anything; its `kind` names the agent
    (runs written before there was a `kind` are CRL's)."""
    from depthrl.training import command, registry, runner

    if not (run_dir / runner.CONFIG_FILE).is_file():
        raise ConfigError("RUN_DIR", str(run_dir), f"not a run directory (no {runner.CONFIG_FILE})")
    kind = command.stored_kind(run_dir) or "crl"  # load_config below reports what is wrong with the file
    args = runner.load_config(run_dir, registry.get(kind).args)
    command.validate_config(args)
    return args


def load(run_dir: str | Path, checkpoint: int | None = None) -> LoadedRun:
    """The run and its state at checkpoint `checkpoint` (an epoch; None: the newest intact one)."""

    from depthrl.training import checkpoint as ckpt
    from depthrl.training import command, runner

    run_dir = Path(run_dir)
    args = run_args(run_dir)
    trainer = command.build(args)
    cfg = trainer.config
    keys = runner.seed_keys(cfg.seed, cfg.num_seeds)
    checkpoints = ckpt.list_checkpoints(run_dir / "checkpoints")
    if checkpoint is None:  # a checkpoint without the replay buffer (--no-checkpoint-buffer) gets an empty one
        found = runner.restore_state(trainer, keys, run_dir / "checkpoints",
                                     warn=lambda m: print(f"warning: {m}", file=sys.stderr))
        if found is None:
            raise ConfigError("RUN_DIR", str(run_dir), "has no intact checkpoint")
        path, state = found
    else:
        by_epoch = {ckpt.epoch_of(p): p for p in checkpoints}
        if checkpoint not in by_epoch:
            raise ConfigError("--checkpoint", checkpoint,
                              f"choose one of the run's checkpoints (epochs): {sorted(by_epoch) or 'none'}")
        path = by_epoch[checkpoint]
        problem = ckpt.verify(path)
        if problem is not None:
            raise ConfigError("--checkpoint", checkpoint, f"checkpoint {path.name} is corrupt ({problem})")
        state = runner.restore_checkpoint(trainer, keys, path)
    return LoadedRun(run_dir=run_dir, args=args, trainer=trainer, state=state, epoch=ckpt.epoch_of(path))


def load_run(run_dir: str | Path) -> tuple[Any, Any, Any]:
    """(args, trainer, state) of a run directory at its newest intact checkpoint.

    Only JSON and arrays are read: nothing in a run directory can execute code.
    """
    loaded = load(run_dir)
    return loaded.args, loaded.trainer, loaded.state


def maze_view(env: Any) -> tuple[Any, float] | None:
    """(maze layout, metres per cell) of the env under the wrappers, None for an env without a maze.

    Point mazes work in cell units (1.0); the physics mazes (Ant, Humanoid) scale each cell to
    `cell_size` metres, with rows along x (their `drawing_xy` maps a position onto the layout's drawing).
    """
    from depthrl.envs.wrappers import unwrapped

    inner = unwrapped(env)
    layout = getattr(inner, "layout", None)
    if layout is not None:
        return layout, 1.0
    maze = getattr(inner, "maze", None)
    if maze is not None and hasattr(inner, "cell_size"):
        return maze, float(inner.cell_size)
    return None


def unwrapped_env(env: Any) -> Any:
    from depthrl.envs.wrappers import unwrapped

    return unwrapped(env)
