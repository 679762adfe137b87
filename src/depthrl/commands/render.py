"""Animate a saved policy in its maze: the point mass's path over the layout, its goal marked, as a GIF.

Episodes run from reset with the deterministic policy of a checkpoint (seed 0 of the run); each episode has
its own colour: path so far (line), current position (dot), goal (star). Physics mazes (Ant, Humanoid) are
drawn the same way, top-down (torso position over the layout); 3-D rendering of physics envs is not
supported yet. Example: depthrl render runs/quickstart --out quickstart.gif --episodes 6
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated

import tyro

from depthrl.errors import ConfigError, check_positive, check_writable_file


@dataclasses.dataclass(frozen=True)
class Args:
    run_dir: Annotated[str, tyro.conf.Positional, tyro.conf.arg(metavar="RUN_DIR")]
    """The run directory (written by `depthrl train`)."""
    out: str | None = None
    """GIF file to write (None: RUN_DIR/plots/policy.gif); checked to be writable before anything is rendered."""
    checkpoint: int | None = None
    """Checkpoint to animate, by epoch (None: the newest intact one)."""
    episodes: int = 4
    """Episodes drawn together, one colour each."""
    stitching: bool = False
    """Draw episodes of the stitching protocol's long start/goal pairs (a --stitching run always does)."""
    seed: int | None = None
    """Evaluation seed (None: the keys the run itself evaluated this checkpoint with)."""
    fps: int = 15
    """Frames per second of the GIF."""
    max_frames: int = 100
    """At most this many frames: longer episodes are shown every k-th step."""

    def validate(self) -> Args:
        if self.out is not None and not self.out.lower().endswith(".gif"):
            raise ConfigError("--out", self.out, "must be a .gif file")
        check_positive("--episodes", self.episodes)
        check_positive("--fps", self.fps)
        if self.max_frames < 2:
            raise ConfigError("--max-frames", self.max_frames, "must be >= 2")
        if self.checkpoint is not None and self.checkpoint < 1:
            raise ConfigError("--checkpoint", self.checkpoint, "must be an epoch >= 1 (see RUN_DIR/checkpoints)")
        return self


def rollout(args: Args):
    """(layout, positions [T, K, 2], goals [K, 2], at_goal [T, K] bool, title) of K deterministic episodes."""
    import jax
    import numpy as np

    from depthrl.commands import eval as eval_cmd
    from depthrl.envs.registry import make_envs
    from depthrl.training import runner, runs

    run_args = runs.run_args(Path(args.run_dir))
    env_config = eval_cmd.eval_env_config(run_args.env, eval_cmd.Args(run_dir=args.run_dir, stitching=args.stitching))
    _, eval_env = make_envs(env_config)
    view = runs.maze_view(eval_env)
    if view is None:
        try:
            import brax  # noqa: F401

            why = "brax is installed, but depthrl does not drive its 3-D renderer yet"
        except ImportError:
            why = "3-D rendering of physics envs needs brax (not installed) and is not supported yet"
        raise ConfigError("RUN_DIR", args.run_dir, f"its env {env_config.env!r} has no maze to draw a path "
                                                   f"over: {why}")
    layout, _ = view
    loaded = runs.load(args.run_dir, args.checkpoint)
    cfg = loaded.trainer.config
    trainer = dataclasses.replace(loaded.trainer, eval_env=eval_env,
                                  config=dataclasses.replace(cfg, num_eval_envs=args.episodes))
    params0 = jax.tree.map(lambda x: x[0], loaded.state.agent.params)
    key = runner.eval_keys(cfg.seed if args.seed is None else args.seed, 1, loaded.epoch)[0]
    _, positions, goals = jax.jit(trainer.evaluate, static_argnums=2)(params0, key, True)
    positions, goals = np.asarray(positions, float)[..., :2], np.asarray(goals, float)[:, :2]
    radius = getattr(runs.unwrapped_env(eval_env), "success_radius", 0.5)
    at_goal = np.linalg.norm(positions - goals[None], axis=-1) < radius
    inner = runs.unwrapped_env(eval_env)
    if hasattr(inner, "drawing_xy"):  # physics mazes: metres, rows along x -> the drawing's cells
        positions, goals = inner.drawing_xy(positions), inner.drawing_xy(goals)
    title = f"{loaded.run_dir.name}: epoch {loaded.epoch}, {env_config.env}"
    return layout, positions, goals, at_goal, title


def write_gif(layout, positions, goals, at_goal, path: Path, fps: int, max_frames: int, title: str = "") -> int:
    """Animate positions [T, K, 2] over the maze into a GIF at `path`; returns the number of frames."""
    import numpy as np
    from matplotlib.animation import FuncAnimation, PillowWriter

    from depthrl.envs import render

    steps, episodes = positions.shape[:2]
    stride = max(1, -(-steps // max_frames))
    frames = list(range(0, steps, stride))
    if frames[-1] != steps - 1:
        frames.append(steps - 1)
    fig, ax = render._new_axes(layout)
    render.render_layout(layout, ax)
    colors = [f"C{i % 10}" for i in range(episodes)]
    paths = [ax.plot([], [], color=c, linewidth=1.2, alpha=0.9, zorder=3)[0] for c in colors]
    dots = [ax.plot([], [], "o", color=c, markersize=6, markeredgecolor="black", zorder=4)[0] for c in colors]
    for goal, color in zip(goals, colors, strict=True):
        ax.plot(*goal[:2], "*", color=color, markersize=13, markeredgecolor="black", zorder=5)
    label = ax.set_title(f"{title}\nstep 1/{steps}", fontsize=8)  # full text before the layout is fixed

    def draw(t: int):
        for k in range(episodes):
            paths[k].set_data(positions[: t + 1, k, 0], positions[: t + 1, k, 1])
            dots[k].set_data([positions[t, k, 0]], [positions[t, k, 1]])
        reached = int(np.sum(at_goal[t]))
        label.set_text(f"{title}\nstep {t + 1}/{steps} · at goal {reached}/{episodes}")
        return [*paths, *dots, label]

    fig.tight_layout()
    animation = FuncAnimation(fig, draw, frames=frames, blit=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    animation.save(str(path), writer=PillowWriter(fps=fps))
    return len(frames)


def main(args: Args) -> int:
    args.validate()
    out = Path(args.out) if args.out else Path(args.run_dir) / "plots" / "policy.gif"
    if args.out or Path(args.run_dir).is_dir():  # a missing RUN_DIR is reported by rollout, not created here
        check_writable_file("--out", out)
    layout, positions, goals, at_goal, title = rollout(args)
    frames = write_gif(layout, positions, goals, at_goal, out, args.fps, args.max_frames, title)
    final = float(at_goal[-1].mean())
    print(f"wrote {out} ({frames} frames, {positions.shape[1]} episodes; at goal on the last step: {final:.2f})")
    return 0
