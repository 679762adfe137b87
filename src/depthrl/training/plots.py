"""Plots of a run: learning curves, final-policy trajectories over the maze, and the critic's Q heat-map
(the energy of reaching one fixed goal from every maze position: Wang et al. 2025, Fig. on
representations — a critic that respects walls ranks positions by path length, not Euclidean distance).
"""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from depthrl.envs.wrappers import unwrapped


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_learning_curves(rows: list[dict], path: Path, title: str = "") -> Path:
    """time-at-goal and success (eval) vs env steps, or episode return and length for reward envs (rows
    with `eval/return`); mean ± std over seeds where there are several."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    steps = np.array([r["env_steps"] for r in rows], dtype=float)
    goal_metrics = not any("eval/return" in r for r in rows)
    panels = (("eval/time_at_goal", "time at goal"), ("eval/success", "success")) if goal_metrics else \
        (("eval/return", "episode return"), ("eval/length", "episode length"))
    for ax, (name, label) in zip(axes, panels, strict=True):
        mean = np.array([r.get(name, np.nan) for r in rows], dtype=float)
        std = np.array([r.get(f"{name}_std", 0.0) for r in rows], dtype=float)
        ax.plot(steps, mean, marker="o", ms=3)
        ax.fill_between(steps, mean - std, mean + std, alpha=0.25)
        ax.set_xlabel("env steps")
        ax.set_ylabel(label)
        if goal_metrics:
            ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
    fig.suptitle(title or "evaluation (deterministic policy)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def critic_energy_fn(trainer, params, goal, num_bodies: int = 8):
    """fn(positions [P, 2] in maze cells) -> critic energy f(s, π(s, g), g) [P] for the goal `goal` (cells).

    Every state coordinate but the goal's (x, y) comes from `num_bodies` reset states of the eval env
    (the point mass: zero velocity; the crawler: a random heading and joint angles; the Ant: its standing
    pose), so the critic is asked about bodies it has seen, and the energy at a position is the mean over
    those bodies (one random heading alone would rank positions by where that heading points). A physics
    maze's positions are scaled by its cell size.
    """
    if num_bodies < 1:
        raise ValueError(f"num_bodies={num_bodies} must be >= 1")
    maze = unwrapped(trainer.eval_env)
    scale = float(getattr(maze, "cell_size", 1.0))
    spec = trainer.eval_env.spec
    xy = jnp.asarray(spec.goal_indices)
    keys = jax.random.split(jax.random.PRNGKey(0), num_bodies)
    bodies = jax.jit(jax.vmap(trainer.eval_env.reset))(keys).obs[:, : spec.state_dim]  # [B, state_dim]
    goal = jnp.asarray(goal, jnp.float32) * scale

    def one_body(body: jax.Array, cells: jax.Array) -> jax.Array:
        states = jnp.broadcast_to(body, (cells.shape[0], spec.state_dim)).at[:, xy].set(cells * scale)
        goals = jnp.broadcast_to(goal, (cells.shape[0], goal.shape[-1]))
        obs = jnp.concatenate([states, goals], -1)
        action = trainer.agent.act(params, obs, jax.random.PRNGKey(0), deterministic=True)
        return trainer.agent.q_value(params, states, action, goals)

    energies = jax.jit(lambda cells: jnp.mean(jax.vmap(one_body, (0, None))(bodies, cells), axis=0))
    return lambda positions: np.asarray(energies(jnp.asarray(positions, jnp.float32)))


def plot_run(run_dir: Path, trainer, state, rows: list[dict]) -> list[Path]:
    """All plots of a run into RUN_DIR/plots; `state` has a leading seed axis (seed 0 is drawn)."""
    from depthrl.envs import render
    from depthrl.training.runner import eval_keys

    out = run_dir / "plots"
    written = []
    if rows:
        written.append(plot_learning_curves(rows, out / "learning_curves.png", title=run_dir.name))
    params0 = jax.tree.map(lambda x: x[0], state.agent.params)
    maze = unwrapped(trainer.eval_env)
    layout = getattr(maze, "layout", None)
    if layout is None:  # not a maze: nothing to draw over
        return written
    _, positions, goals = jax.jit(trainer.evaluate, static_argnums=2)(
        params0, eval_keys(trainer.config.seed, 1, 10**6)[0], True)
    k = min(8, positions.shape[1])
    trajectories = np.asarray(jnp.swapaxes(positions[:, :k], 0, 1))
    written.append(render.plot_trajectories(layout, trajectories, np.asarray(goals[:k]),
                                            out / "trajectories.png"))
    if hasattr(trainer.agent, "q_value"):
        goal = farthest_goal(layout)
        written.append(render.heatmap_over_maze(
            layout, critic_energy_fn(trainer, params0, goal), goal, out / "q_heatmap.png",
            title="critic f(s, π(s, g), g) for the goal ★ (brighter = closer, as the critic sees it)",
            label="critic energy"))
    return written


def farthest_goal(layout) -> np.ndarray:
    """Centre (x, y) of the goal cell farthest by shortest path from the first reset cell: the goal that
    tells a critic that follows the maze from one fooled by Euclidean distance."""
    from depthrl.envs.maze import cell_distances

    dist = cell_distances(layout)[layout.reset_indices[0], layout.goal_indices]
    return layout.centers(layout.goal_indices[[int(np.argmax(dist))]])[0]
