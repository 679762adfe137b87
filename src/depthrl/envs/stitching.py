"""Stitching (1000-layer paper, §"stitching"): train on short start→goal pairs, evaluate on longer ones.

Two protocols (`--stitch-pairs`):

  all      every (start, goal) pair of free cells whose shortest-path distance (BFS, 4-connected) lies in
           the range, in both directions, drawn uniformly; the layout's R/G marks are ignored.
  forward  the paper code's (scaling-crl `envs/ant_maze_generalization.py`, env ids like
           `ant_u4_maze_gen_1f2f3f`): the maze must be a corridor; the path runs from its R cell to the
           corridor's other end, and a pair is (path[i], path[i + d]) for each distance d in the range, so
           the goal always lies further along the path than the start. Each distance gets the same total
           weight (1 / number of distances) and the pairs of one distance share it equally.

Training uses distances 1..`stitch_train_max`, evaluation `stitch_eval_min..stitch_eval_max`; a cell is
never paired with itself. An agent that solves the evaluation pairs must stitch pieces of its training
trajectories.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from depthrl.envs.maze import Layout, cell_distances
from depthrl.errors import ConfigError, check_defaults, check_positive

PROTOCOLS = ("all", "forward")

Pairs = tuple[tuple[int, int], ...]


def stitching_pairs(layout: Layout, min_cells: int, max_cells: int) -> Pairs:
    """All (start, goal) free-cell index pairs with BFS distance in [max(min_cells, 1), max_cells].

    Indices refer to `layout.free_cells`; the result is a tuple (static, hashable), possibly empty.
    """
    dist = cell_distances(layout)
    ok = (dist >= max(min_cells, 1)) & (dist <= max_cells)
    return tuple((int(s), int(g)) for s, g in np.argwhere(ok))


def longest_path(layout: Layout) -> int:
    """The largest BFS distance between two connected free cells (the maze's diameter in cells)."""
    return int(cell_distances(layout).max())


def forward_path(layout: Layout) -> tuple[int, ...]:
    """Free-cell indices along the corridor from the layout's single R cell to the corridor's far end.

    Raises ConfigError (naming --stitch-pairs) unless the layout has one R cell and the walk from it never
    branches (the paper code's generalisation mazes: U, U4, U5).
    """
    cells = [tuple(int(v) for v in rc) for rc in layout.free_cells]
    index = {rc: i for i, rc in enumerate(cells)}
    if len(layout.reset_indices) != 1:
        raise ConfigError("--stitch-pairs", "forward", f"needs a maze with exactly one R cell ({layout.name!r} has "
                                                       f"{len(layout.reset_indices)})")
    path = [int(layout.reset_indices[0])]
    while True:
        r, c = cells[path[-1]]
        ahead = [index[n] for n in ((r, c + 1), (r + 1, c), (r, c - 1), (r - 1, c)) if n in index
                 and index[n] not in path]
        if not ahead:
            return tuple(path)
        if len(ahead) > 1:
            raise ConfigError("--stitch-pairs", "forward", f"needs a corridor maze: the path from the R cell of "
                                                           f"{layout.name!r} branches at cell {cells[path[-1]]}")
        path.append(ahead[0])


def forward_pairs(layout: Layout, min_cells: int, max_cells: int) -> tuple[Pairs, tuple[float, ...]]:
    """(pairs, weights) of the forward protocol: (path[i], path[i + d]) for d in [max(min_cells, 1), max_cells],
    each distance's pairs sharing 1 / (number of distances with pairs) equally. Possibly empty."""
    path = forward_path(layout)
    distances = [d for d in range(max(min_cells, 1), max_cells + 1) if d < len(path)]
    pairs, weights = [], []
    for d in distances:
        count = len(path) - d
        pairs += [(path[i], path[i + d]) for i in range(count)]
        weights += [1.0 / (len(distances) * count)] * count
    return tuple(pairs), tuple(weights)


def pair_set(layout: Layout, protocol: str, min_cells: int, max_cells: int) -> tuple[Pairs, tuple[float, ...] | None]:
    """(pairs, weights) of a stitching protocol (weights None = uniform over the pairs)."""
    if protocol not in PROTOCOLS:
        raise ConfigError("--stitch-pairs", protocol, f"choose one of {', '.join(PROTOCOLS)}")
    if protocol == "forward":
        return forward_pairs(layout, min_cells, max_cells)
    return stitching_pairs(layout, min_cells, max_cells), None


FLAGS = (("--stitch-train-max", "stitch_train_max"), ("--stitch-eval-min", "stitch_eval_min"),
         ("--stitch-eval-max", "stitch_eval_max"), ("--stitch-pairs", "stitch_pairs"))
"""(flag, EnvConfig field) of the --stitch-* flags."""


def validate_flags(cfg: Any, layout: Layout | None, on: bool) -> None:
    """The stitching checks of an EnvConfig `cfg` for any maze env (point, crawler or physics).

    `on`: the protocol is on (--stitching, or a task that always stitches); `layout` is the maze (only read
    when `on`). Off, every --stitch-* flag must keep its default. On, --random-start is refused and the
    distances must leave evaluation pairs that training never sees and that the maze has. Raises ConfigError
    naming the flag at fault.
    """
    if not on:
        check_defaults(cfg, FLAGS, "only used with --stitching")
        return
    if cfg.random_start:
        by = "--stitching" if cfg.stitching else "stitching"  # a *-stitch task stitches without the flag
        raise ConfigError("--random-start", True, f"not with {by} (the pairs fix the start cells)")
    check_positive("--stitch-train-max", cfg.stitch_train_max)
    if cfg.stitch_eval_min <= cfg.stitch_train_max:
        raise ConfigError("--stitch-eval-min", cfg.stitch_eval_min,
                          f"must exceed --stitch-train-max={cfg.stitch_train_max} so evaluation pairs are never "
                          "trained on")
    if cfg.stitch_eval_max < cfg.stitch_eval_min:
        raise ConfigError("--stitch-eval-max", cfg.stitch_eval_max,
                          f"must be >= --stitch-eval-min={cfg.stitch_eval_min}")
    if cfg.stitch_pairs not in PROTOCOLS:
        raise ConfigError("--stitch-pairs", cfg.stitch_pairs, f"choose one of {', '.join(PROTOCOLS)}")
    if not pair_set(layout, cfg.stitch_pairs, cfg.stitch_eval_min, cfg.stitch_eval_max)[0]:
        raise ConfigError("--stitch-eval-min", cfg.stitch_eval_min,
                          f"no two cells of maze {layout.name!r} are {cfg.stitch_eval_min}..{cfg.stitch_eval_max} "
                          f"cells apart (its longest shortest path is {longest_path(layout)} cells)")


PairSet = tuple[Pairs, tuple[float, ...] | None]


def train_eval_pairs(cfg: Any, layout: Layout) -> tuple[PairSet, PairSet]:
    """((pairs, weights) of training, (pairs, weights) of evaluation) of a stitching EnvConfig `cfg`:
    distances 1..--stitch-train-max and --stitch-eval-min..--stitch-eval-max under --stitch-pairs."""
    return (pair_set(layout, cfg.stitch_pairs, 1, cfg.stitch_train_max),
            pair_set(layout, cfg.stitch_pairs, cfg.stitch_eval_min, cfg.stitch_eval_max))
