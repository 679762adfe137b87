"""A scripted shortest-path controller for point mazes (test helper): follow BFS cell by cell."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from depthrl.envs.maze import PointMaze, cell_distances


def oracle_policy(env: PointMaze, gain: float = 4.0, damping: float = 0.8):
    """policy(obs [6]) -> action [2]: steer to the centre of the next cell on a shortest path to the goal.

    In the goal's cell it steers to the goal itself. Pure and vmappable.
    """
    layout = env.layout
    dist = cell_distances(layout)
    cells = layout.free_cells
    index = -np.ones((layout.height, layout.width), np.int32)
    index[cells[:, 0], cells[:, 1]] = np.arange(len(cells))
    # next_cell[goal, here]: the neighbour of `here` one step closer to `goal` (itself at the goal).
    next_cell = np.tile(np.arange(len(cells)), (len(cells), 1))
    for g in range(len(cells)):
        for h, (r, c) in enumerate(cells):
            for nr, nc in ((r - 1, c), (r + 1, c), (r, c - 1), (r, c + 1)):
                n = index[nr, nc] if 0 <= nr < layout.height and 0 <= nc < layout.width else -1
                if n >= 0 and dist[n, g] >= 0 and dist[n, g] < dist[next_cell[g, h], g]:
                    next_cell[g, h] = n
    centers = jnp.asarray(layout.centers(np.arange(len(cells))))
    index, next_cell = jnp.asarray(index), jnp.asarray(next_cell)

    def policy(obs):
        pos, vel, goal = obs[:2], obs[2:4], obs[4:6]
        here = index[pos[1].astype(jnp.int32), pos[0].astype(jnp.int32)]
        there = index[goal[1].astype(jnp.int32), goal[0].astype(jnp.int32)]
        step = next_cell[there, here]
        target = jnp.where(step == here, goal, centers[step])
        return jnp.clip(gain * (target - pos) - damping * vel, -1.0, 1.0)

    return policy
