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


def q_heatmap_values(agent, params, positions: jax.Array, goal: jax.Array, state_dim: int) -> jax.Array:
    """Critic energy f(s, π(s, g), g) for s = (x, y, 0, ...) at each position [P, 2] -> [P]."""
    state = jnp.zeros((positions.shape[0], state_dim)).at[:, :2].set(positions)
    goals = jnp.broadcast_to(goal, (positions.shape[0], goal.shape[-1]))
    action = agent.act(params, jnp.concatenate([state, goals], -1), jax.random.PRNGKey(0), deterministic=True)
    return agent.q_value(params, state, action, goals)


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
        spec = trainer.eval_env.spec
        goal = jnp.asarray(farthest_goal(layout))
        fn = jax.jit(lambda p: q_heatmap_values(trainer.agent, params0, p, goal, spec.state_dim))
        written.append(render.heatmap_over_maze(
            layout, lambda p: np.asarray(fn(jnp.asarray(p))), np.asarray(goal), out / "q_heatmap.png",
            title="critic f(s, π(s, g), g) for the goal ★ (brighter = closer, as the critic sees it)",
            label="critic energy"))
    return written


def farthest_goal(layout) -> np.ndarray:
    """Centre (x, y) of the goal cell farthest by shortest path from the first reset cell: the goal that
    tells a critic that follows the maze from one fooled by Euclidean distance."""
    from depthrl.envs.maze import cell_distances

    dist = cell_distances(layout)[layout.reset_indices[0], layout.goal_indices]
    return layout.centers(layout.goal_indices[[int(np.argmax(dist))]])[0]
