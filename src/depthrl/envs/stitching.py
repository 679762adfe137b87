"""Stitching (1000-layer paper, §"stitching"): train on short start→goal pairs, evaluate on longer ones.

Training episodes start and end in cells at most `stitch_train_max` cells apart along the maze's
shortest path (BFS, 4-connected); evaluation uses pairs `stitch_eval_min..stitch_eval_max` apart. Any
free cell may be a start or a goal (the layout's R/G marks are ignored); a cell is never paired with
itself. An agent that solves the evaluation pairs must stitch pieces of its training trajectories.
"""

from __future__ import annotations

import numpy as np

from depthrl.envs.maze import Layout, cell_distances


def stitching_pairs(layout: Layout, min_cells: int, max_cells: int) -> tuple[tuple[int, int], ...]:
    """All (start, goal) free-cell index pairs with BFS distance in [max(min_cells, 1), max_cells].

    Indices refer to `layout.free_cells`; the result is a tuple (static, hashable), possibly empty.
    """
    dist = cell_distances(layout)
    ok = (dist >= max(min_cells, 1)) & (dist <= max_cells)
    return tuple((int(s), int(g)) for s, g in np.argwhere(ok))


def longest_path(layout: Layout) -> int:
    """The largest BFS distance between two connected free cells (the maze's diameter in cells)."""
    return int(cell_distances(layout).max())
