"""Pictures of mazes: the layout, trajectories over it, and a heat-map of a function of position.

Uses matplotlib's object API with the Agg canvas (no pyplot, no display, no global backend change).
Axes are in cell units as the env: x to the right, y downwards, so the picture reads like the ASCII.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from depthrl.envs.maze import Layout, parse_layout

WALL_COLOR = "#3b3b3b"
RESET_COLOR = "#2ca02c"
GOAL_COLOR = "#d62728"


def _new_axes(layout: Layout, scale: float = 0.6) -> tuple[Figure, Axes]:
    fig = Figure(figsize=(max(3.0, scale * layout.width + 1.5), max(3.0, scale * layout.height + 0.5)))
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot()


def render_layout(layout: Layout | str, ax: Axes | None = None, cells: bool = True) -> Axes:
    """Draw walls (dark), reset cells (green outline, `R`) and goal cells (red outline, `G`) on `ax`.

    `cells=False` draws the walls only. Returns the axes (a new figure's when `ax` is None).
    """
    layout = parse_layout(layout)
    if ax is None:
        _, ax = _new_axes(layout)
    walls = np.ma.masked_where(~layout.walls, np.ones(layout.walls.shape))
    extent = (0, layout.width, layout.height, 0)
    ax.imshow(walls, cmap=ListedColormap([WALL_COLOR]), extent=extent, interpolation="nearest", zorder=2)
    if cells:
        for indices, color, inset, label in (
            (layout.reset_indices, RESET_COLOR, 0.06, "R"),
            (layout.goal_indices, GOAL_COLOR, 0.12, "G"),
        ):
            for row, col in layout.free_cells[indices]:
                box = Rectangle(
                    (col + inset, row + inset),
                    1 - 2 * inset,
                    1 - 2 * inset,
                    fill=False,
                    edgecolor=color,
                    linewidth=1.0,
                    alpha=0.6,
                    zorder=1,
                )
                ax.add_patch(box)
                dx = 0.18 if label == "R" else 0.82
                ax.text(
                    col + dx, row + 0.2, label, color=color, fontsize=7, ha="center", va="center", zorder=1
                )
    ax.set_xlim(0, layout.width)
    ax.set_ylim(layout.height, 0)
    ax.set_aspect("equal")
    if cells:  # a light cell grid (left out over heat-maps)
        ax.set_xticks(range(layout.width + 1), minor=True)
        ax.set_yticks(range(layout.height + 1), minor=True)
        ax.grid(which="minor", color="#dddddd", linewidth=0.5, zorder=0)
    ax.tick_params(which="both", length=0, labelsize=7)
    return ax


def plot_trajectories(layout: Layout | str, trajectories, goals, path: str, title: str | None = None) -> str:
    """Write a PNG of K (x, y) trajectories over the maze: start ○, end ×, goal ★ in the same colour.

    trajectories: [K, T, 2]; goals: [K, 2]. Returns `path`.
    """
    layout = parse_layout(layout)
    trajectories, goals = np.asarray(trajectories, float), np.asarray(goals, float)
    fig, ax = _new_axes(layout)
    render_layout(layout, ax)
    palette = [f"C{i % 10}" for i in range(len(trajectories))]
    for traj, goal, color in zip(trajectories, goals, palette, strict=True):
        ax.plot(traj[:, 0], traj[:, 1], color=color, linewidth=1.2, alpha=0.9, zorder=3)
        ax.plot(*traj[0], "o", color=color, markersize=5, zorder=4)
        ax.plot(*traj[-1], "x", color=color, markersize=6, zorder=4)
        ax.plot(*goal, "*", color=color, markersize=12, markeredgecolor="black", zorder=5)
    if title:  # wrapped: a small maze's figure is narrower than one line of a long title
        ax.set_title(textwrap.fill(title, 55), fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    return path


def heatmap_over_maze(
    layout: Layout | str,
    fn: Callable[[np.ndarray], np.ndarray],
    goal,
    path: str,
    resolution: int = 12,
    title: str | None = None,
    label: str = "value",
) -> str:
    """Write a PNG of `fn` over the free space of the maze, walls masked, `goal` (x, y) marked ★.

    fn: batched scalar function, positions [P, 2] (x, y) -> [P] (e.g. a critic's energy of reaching
    `goal` from each position). It is called once, on the centres of a grid of `resolution` × `resolution`
    points per free cell. Returns `path`.
    """
    layout = parse_layout(layout)
    offsets = (np.arange(resolution) + 0.5) / resolution
    xs = np.arange(layout.width)[:, None] + offsets  # [W, res]
    ys = np.arange(layout.height)[:, None] + offsets  # [H, res]
    gx, gy = np.meshgrid(xs.reshape(-1), ys.reshape(-1))  # [H*res, W*res]
    free = ~layout.walls[(gy.astype(int)), (gx.astype(int))]
    positions = np.stack([gx[free], gy[free]], axis=-1).astype(np.float32)
    values = np.asarray(fn(positions), dtype=float).reshape(-1)
    if values.shape[0] != positions.shape[0]:
        raise ValueError(f"fn returned {values.shape[0]} values for {positions.shape[0]} positions")
    image = np.full(gx.shape, np.nan)
    image[free] = values
    fig, ax = _new_axes(layout, scale=0.75)
    extent = (0, layout.width, layout.height, 0)
    shown = ax.imshow(np.ma.masked_invalid(image), cmap="viridis", extent=extent, interpolation="nearest")
    render_layout(layout, ax, cells=False)
    ax.plot(
        *np.asarray(goal, float)[:2], "*", color="white", markersize=16, markeredgecolor="black", zorder=5
    )
    fig.colorbar(shown, ax=ax, shrink=0.8, label=label)
    if title:  # wrapped: a small maze's figure is narrower than one line of a long title
        ax.set_title(textwrap.fill(title, 55), fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    return path
