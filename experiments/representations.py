"""Analysis 5 — representations (Wang et al. 2025, Q heat-maps on the U-maze: the shallow critic's values
follow Euclidean distance to the goal straight through the wall; the deep critic's follow the path round
it).

Trains CRL at depth 4 and at the deepest depth with episodes starting anywhere (so the critic sees every
position it is drawn at), then draws both critics' energy f(s, π(s, g), g) over the maze for the goal
farthest by path from the start, side by side, and measures how well each follows the maze: the Spearman
rank correlation, over the centres of all free cells, of the critic's energy with −(shortest-path
distance) and with −(Euclidean distance) to the goal. A critic that respects the wall has the first
higher than the second.

  cpu    depth {4, 16}, point-mass U-maze        paper   depth {4, 64}, Ant U-maze

    .venv/bin/python experiments/representations.py   # → experiments/out/representations/{q_heatmaps.png,.csv}
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import jax
import numpy as np
import tyro

from common import Options, run
from depthrl import sweep
from depthrl.envs import render
from depthrl.envs.maze import cell_distances
from depthrl.envs.wrappers import unwrapped
from depthrl.training import runs
from depthrl.training.plots import critic_energy_fn, farthest_goal


@dataclasses.dataclass(frozen=True)
class ReprOptions(Options):
    depths: tuple[int, ...] | None = None
    """Depths compared (default: 4 and 16 at cpu scale, 4 and 64 at paper scale)."""


def rank(x: np.ndarray) -> np.ndarray:
    order = np.argsort(x, kind="stable")
    ranks = np.empty(len(x))
    ranks[order] = np.arange(len(x))
    for value in np.unique(x):  # ties share their mean rank
        tied = x == value
        ranks[tied] = ranks[tied].mean()
    return ranks


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(rank(a), rank(b))[0, 1])


def critic_fn(run_dir: Path, seed: int = 0):
    """(layout, goal, fn(positions [P, 2]) -> energies [P]) of a finished run's critic (seed `seed`).

    Positions and the goal are in maze cells. The critic is asked about realistic bodies at each position
    (`depthrl.training.plots.critic_energy_fn`: the mean energy over reset states whose x, y are moved there;
    the point mass: zero velocity; the crawler: random headings and joint angles; the Ant: its standing pose),
    the same function the run's own `plots/q_heatmap.png` draws.
    """
    args, trainer, state = runs.load_run(run_dir)
    maze = unwrapped(trainer.eval_env)
    layout = getattr(maze, "layout", None) or maze.maze
    goal = np.asarray(farthest_goal(layout))
    params = jax.tree.map(lambda x: x[seed], state.agent.params)
    return layout, goal, critic_energy_fn(trainer, params, goal)


def wall_scores(layout, goal: np.ndarray, fn) -> dict[str, float]:
    """Spearman correlation of the critic energy at every free cell centre with −path and −Euclid distance."""
    centres = layout.centers(np.arange(len(layout.free_cells)))
    goal_cell = int(np.argmin(np.linalg.norm(centres - goal, axis=1)))
    path = cell_distances(layout)[:, goal_cell].astype(float)
    euclid = np.linalg.norm(centres - goal, axis=1)
    keep = np.arange(len(centres)) != goal_cell
    energy = fn(centres)[keep]
    return {"spearman_path": spearman(energy, -path[keep]), "spearman_euclid": spearman(energy, -euclid[keep])}


def heatmap_image(layout, fn, resolution: int = 12) -> np.ndarray:
    offsets = (np.arange(resolution) + 0.5) / resolution
    gx, gy = np.meshgrid((np.arange(layout.width)[:, None] + offsets).ravel(),
                         (np.arange(layout.height)[:, None] + offsets).ravel())
    free = ~layout.walls[gy.astype(int), gx.astype(int)]
    image = np.full(gx.shape, np.nan)
    image[free] = fn(np.stack([gx[free], gy[free]], -1))
    return image


def plot_side_by_side(path: Path, panels: list[tuple[str, object, np.ndarray, np.ndarray]]) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 4.2))
    for ax, (title, layout, goal, image) in zip(np.atleast_1d(axes), panels, strict=True):
        shown = ax.imshow(np.ma.masked_invalid(image), cmap="viridis", extent=(0, layout.width, layout.height, 0),
                          interpolation="nearest")
        render.render_layout(layout, ax, cells=False)
        ax.plot(*goal[:2], "*", color="white", markersize=16, markeredgecolor="black", zorder=5)
        fig.colorbar(shown, ax=ax, shrink=0.8, label="critic energy")
        ax.set_title(title, fontsize=9)
    fig.suptitle("critic f(s, π(s, g), g) for the goal ★ (brighter = closer, as the critic sees it)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main(opts: ReprOptions) -> None:
    opts.validate()
    depths = opts.depths or ((4, 64) if opts.paper else (4, 16))
    env = "ant-u-maze" if opts.paper else "point-maze-u"
    result = run("representations", opts, "crl", {"depth": depths},
                 {"env": env, "random_start": True, **opts.train_flags()},
                 title=f"Representations ({env}, random starts): IQM time at goal")
    out = opts.out_dir("representations")
    rows, panels = [], []
    for cell in result.cells:
        for seed in range(cell.num_seeds):
            layout, goal, fn = critic_fn(cell.run_dir, seed)
            scores = wall_scores(layout, goal, fn)
            rows.append({"depth": cell.values["depth"], "seed_index": seed, **scores})
            if seed == 0:
                panels.append((f"depth {cell.values['depth']} (seed 0): Spearman vs path "
                               f"{scores['spearman_path']:.2f}, vs Euclid {scores['spearman_euclid']:.2f}",
                               layout, goal, heatmap_image(layout, fn)))
    sweep.write_csv(out / "wall_scores.csv", rows)
    for row in rows:
        print(f"  depth {row['depth']} seed {row['seed_index']}: Spearman(energy, -path) {row['spearman_path']:.3f}, "
              f"Spearman(energy, -euclid) {row['spearman_euclid']:.3f}")
    print(f"wrote {out / 'wall_scores.csv'} and {plot_side_by_side(out / 'q_heatmaps.png', panels)}")


if __name__ == "__main__":
    main(tyro.cli(ReprOptions))
