"""Tests for depthrl.envs.render: PNGs are written, and the heat-map samples only free space."""

from __future__ import annotations

import numpy as np

from depthrl.envs.maze import parse_layout
from depthrl.envs.render import heatmap_over_maze, plot_trajectories, render_layout

PNG = b"\x89PNG\r\n\x1a\n"


def _is_png(path) -> bool:
    with open(path, "rb") as f:
        return f.read(8) == PNG


def test_render_layout_returns_axes_spanning_the_maze():
    ax = render_layout("hardest")
    assert ax.get_xlim() == (0, 12) and ax.get_ylim() == (9, 0)  # y grows downwards, as the ASCII


def test_plot_trajectories_writes_a_png(tmp_path):
    rng = np.random.default_rng(0)
    trajectories = np.cumsum(rng.normal(0, 0.05, (3, 20, 2)), axis=1) + [1.5, 1.5]
    path = plot_trajectories(
        "u", trajectories, np.array([[1.5, 3.5], [3.5, 3.5], [2.5, 1.5]]), tmp_path / "t.png"
    )
    assert _is_png(path) and path.stat().st_size > 5000


def test_heatmap_samples_free_positions_only(tmp_path):
    layout = parse_layout("u")
    seen = []

    def fn(positions):
        seen.append(positions)
        return -np.linalg.norm(positions - [1.5, 3.5], axis=-1)

    path = heatmap_over_maze(layout, fn, (1.5, 3.5), tmp_path / "h.png", resolution=4)
    assert _is_png(path) and path.stat().st_size > 5000
    (positions,) = seen
    assert positions.shape == (len(layout.free_cells) * 16, 2)
    cells = np.floor(positions).astype(int)
    assert not layout.walls[cells[:, 1], cells[:, 0]].any()
