"""Point-mass mazes in pure JAX: ASCII layouts, BFS cell distances and the `PointMaze` env.

Layout characters: `#` wall, `.` free, `R` reset cell (episodes start here), `G` goal cell (goals are
sampled here), `B` both a reset and a goal cell. Rows are separated by newlines or `/`.

Coordinates are in cell units (cell size 1.0): cell (row r, column c) covers x ∈ [c, c + 1),
y ∈ [r, r + 1), so x grows to the right and y grows downwards, as the ASCII reads. The grid is
implicitly surrounded by walls, so a layout need not draw its border.

Built-in layouts follow the mazes of JaxGCRL (Bortkiewicz et al., 2025), which the 1000-layer paper
trains on: every free cell except the reset cell is a goal cell, so the goals behind the wall are the
hard ones. The `*-eval` layouts are the paper code's evaluation mazes: the same walls, far goals only.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import math
import os

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from depthrl.envs.base import EnvSpec, State
from depthrl.errors import ConfigError

WALL, FREE, RESET, GOAL, BOTH = "#", ".", "R", "G", "B"
LAYOUT_CHARS = WALL + FREE + RESET + GOAL + BOTH
_CHAR_HELP = "use # wall, . free, R reset, G goal, B reset+goal"

BUILTIN_LAYOUTS: dict[str, str] = {
    # The U-maze: start in the top arm, the goals in the bottom arm lie behind the wall.
    "u": """
#####
#RGG#
###G#
#GGG#
#####""",
    # Ant U4-maze: a longer U; the reset cell and the far arm's end are 2 apart but 10 cells by path.
    "u4": """
#####
#GGG#
#R#G#
###G#
#G#G#
#GGG#
#####""",
    # Ant U5-maze: the same shape stretched sideways, 16 cells by path.
    "u5": """
########
#GGGGGG#
#R####G#
######G#
#G####G#
#GGGGGG#
########""",
    # Ant big maze (6 x 6 interior).
    "big": """
########
#RG##GG#
#GG#GGG#
##GGG###
#GG#GGG#
#G#GG#G#
#GGG#GG#
########""",
    # Ant hardest maze (10 x 7 interior).
    "hardest": """
############
#RGGG#GGGGG#
#G##G#G#G#G#
#GGGGGG#GGG#
#G####G###G#
#GG#G#GGGGG#
##G#G#G#G###
#GG#GGG#GGG#
############""",
    # Evaluation layouts of the paper's code (envs/ant_maze.py, humanoid_maze.py `*_EVAL`): the training
    # maze with only its far goals kept (the others become free cells).
    "u-eval": """
#####
#R..#
###.#
#GGG#
#####""",
    "u4-eval": """
#####
#...#
#R#.#
###.#
#G#.#
#GGG#
#####""",
    "u5-eval": """
########
#......#
#R####.#
######.#
#G####G#
#GGGGGG#
########""",
    # The Ant's big-maze evaluation layout (ant_maze.py BIG_MAZE_EVAL).
    "big-eval": """
########
#R.##GG#
#..#..G#
##...###
#..#...#
#.#G.#G#
#.GG#GG#
########""",
    # The Humanoid's differs by one goal cell (humanoid_maze.py BIG_MAZE_EVAL: row 2, column 5).
    "big-eval-humanoid": """
########
#R.##GG#
#..#.GG#
##...###
#..#...#
#.#G.#G#
#.GG#GG#
########""",
    # A small open room: start and goal anywhere.
    "open": """
#######
#BBBBB#
#BBBBB#
#BBBBB#
#BBBBB#
#BBBBB#
#######""",
}


@dataclasses.dataclass(frozen=True)
class Layout:
    """A validated maze layout (hashable, so an env holding it can be closed over by jit).

    rows: the ASCII rows, all the same length, over the characters of `LAYOUT_CHARS`.
    name: a built-in name, a file path, or "custom".
    """

    rows: tuple[str, ...]
    name: str = "custom"

    @property
    def height(self) -> int:
        return len(self.rows)

    @property
    def width(self) -> int:
        return len(self.rows[0])

    @functools.cached_property
    def walls(self) -> np.ndarray:
        """[height, width] bool, True on wall cells."""
        return np.array([[ch == WALL for ch in row] for row in self.rows], dtype=bool)

    @functools.cached_property
    def free_cells(self) -> np.ndarray:
        """[num_cells, 2] int (row, col) of the free cells, row-major; `cell_distances` indexes these."""
        return np.argwhere(~self.walls).astype(np.int32)

    def _cells_of(self, chars: str) -> np.ndarray:
        return np.array([i for i, (r, c) in enumerate(self.free_cells) if self.rows[r][c] in chars], np.int32)

    @functools.cached_property
    def reset_indices(self) -> np.ndarray:
        """Indices into `free_cells` of the reset cells (`R` or `B`)."""
        return self._cells_of(RESET + BOTH)

    @functools.cached_property
    def goal_indices(self) -> np.ndarray:
        """Indices into `free_cells` of the goal cells (`G` or `B`)."""
        return self._cells_of(GOAL + BOTH)

    def centers(self, indices: np.ndarray) -> np.ndarray:
        """[n, 2] float32 (x, y) centres of the free cells `indices`."""
        rc = self.free_cells[np.asarray(indices, dtype=np.int32)]
        return (rc[:, ::-1] + 0.5).astype(np.float32)

    def __str__(self) -> str:
        return "\n".join(self.rows)


def pick_pair(u: jnp.ndarray, weights: tuple[float, ...] | None, count: int) -> jnp.ndarray:
    """Index of a pair from a uniform u in [0, 1): uniform over `count` pairs, or with `weights`."""
    if weights is None:
        return jnp.minimum((u * count).astype(jnp.int32), count - 1)
    cumulative = np.cumsum(np.asarray(weights, np.float64))
    cumulative = jnp.asarray(cumulative / cumulative[-1], jnp.float32)
    return jnp.minimum(jnp.searchsorted(cumulative, u, side="right"), count - 1).astype(jnp.int32)


def start_and_goal_cells(layout: Layout, pairs: tuple[tuple[int, int], ...] | None,
                         random_start: bool) -> tuple[np.ndarray, np.ndarray]:
    """(start, goal) free-cell indices of a maze env (point mass, crawler, Ant, Humanoid): paired row by row
    when `pairs` is set (stitching); else every cell connected to all goal cells with `random_start`, or the
    R cells, each with the G cells."""
    if pairs is not None:
        pairs = np.asarray(pairs, dtype=np.int32).reshape(-1, 2)
        return pairs[:, 0], pairs[:, 1]
    if random_start:
        connected = (cell_distances(layout)[:, layout.goal_indices] >= 0).all(axis=1)
        return np.flatnonzero(connected).astype(np.int32), layout.goal_indices
    return layout.reset_indices, layout.goal_indices


def _bfs(walls: np.ndarray, start: tuple[int, int]) -> np.ndarray:
    """[H, W] int32 4-connected path lengths (in cells) from `start`; -1 where unreachable."""
    height, width = walls.shape
    dist = np.full(walls.shape, -1, dtype=np.int32)
    dist[start] = 0
    queue = collections.deque([start])
    while queue:
        r, c = queue.popleft()
        for nr, nc in ((r - 1, c), (r + 1, c), (r, c - 1), (r, c + 1)):
            if 0 <= nr < height and 0 <= nc < width and not walls[nr, nc] and dist[nr, nc] < 0:
                dist[nr, nc] = dist[r, c] + 1
                queue.append((nr, nc))
    return dist


@functools.lru_cache(maxsize=64)
def cell_distances(layout: Layout) -> np.ndarray:
    """[num_cells, num_cells] int32 shortest-path lengths (BFS, 4-connected) between free cells.

    Index i is `layout.free_cells[i]`; -1 marks an unreachable pair. The array is read-only (cached).
    """
    cells = layout.free_cells
    rows = [_bfs(layout.walls, (int(r), int(c)))[cells[:, 0], cells[:, 1]] for r, c in cells]
    dist = np.stack(rows).astype(np.int32) if rows else np.zeros((0, 0), np.int32)
    dist.setflags(write=False)
    return dist


def parse_layout(source: str | Layout) -> Layout:
    """A `Layout` from a built-in name, a file path, or ASCII rows separated by newlines or `/`.

    Raises ConfigError naming `--layout` for an unknown name/missing file, an unknown character (with its
    row and column), rows of unequal length, no reset cell, no goal cell, or a goal cell unreachable from
    a reset cell (start and goal are sampled independently, so every pair must be connected).
    """
    if isinstance(source, Layout):
        return source
    text = source.strip()
    if text in BUILTIN_LAYOUTS:
        return _parse(BUILTIN_LAYOUTS[text], name=text, source=source)
    if "\n" not in text and os.path.isfile(text):
        with open(text) as f:
            return _parse(f.read(), name=text, source=source)
    body = [ch for ch in text if ch not in "/ \t\r\n"]
    looks_ascii = "\n" in text or sum(ch in LAYOUT_CHARS for ch in body) >= 0.5 * len(body)
    if not looks_ascii:  # a mistyped name or a missing file, not a maze with a typo
        raise ConfigError(
            "--layout",
            source,
            f"not a built-in layout ({', '.join(BUILTIN_LAYOUTS)}), an existing file, nor ASCII rows "
            f"separated by '/' ({_CHAR_HELP})",
        )
    return _parse(text, name="custom", source=source)


def _parse(text: str, name: str, source: str) -> Layout:
    def fail(what: str) -> ConfigError:
        return ConfigError("--layout", source, what)

    rows = [row.strip() for row in text.replace("/", "\n").splitlines()]
    rows = [row for row in rows if row]
    if not rows:
        raise fail("the layout is empty")
    for r, row in enumerate(rows):
        for c, ch in enumerate(row):
            if ch not in LAYOUT_CHARS:
                raise fail(f"unknown character {ch!r} at row {r}, column {c}, counting from 0 ({_CHAR_HELP})")
        if len(row) != len(rows[0]):
            raise fail(
                f"row {r} (from 0) has {len(row)} columns but row 0 has {len(rows[0])}: rows must match"
            )
    layout = Layout(tuple(rows), name=name)
    if len(layout.reset_indices) == 0:
        raise fail("no reset cell: mark at least one cell R (or B)")
    if len(layout.goal_indices) == 0:
        raise fail("no goal cell: mark at least one cell G (or B)")
    dist = cell_distances(layout)
    for g in layout.goal_indices:
        for s in layout.reset_indices:
            if dist[s, g] < 0:
                (gr, gc), (sr, sc) = layout.free_cells[g], layout.free_cells[s]
                raise fail(
                    f"goal cell at row {gr}, column {gc} is unreachable from "
                    f"reset cell at row {sr}, column {sc} (counting from 0)"
                )
    return layout


@struct.dataclass
class PointState:
    """Physics of one point mass: position and velocity in cell units, and its goal position."""

    pos: jax.Array  # [2] (x, y)
    vel: jax.Array  # [2] cells per second
    goal: jax.Array  # [2] (x, y)


@dataclasses.dataclass(frozen=True)
class PointMaze:
    """A continuous 2-D point mass in a maze; goal-conditioned, reward = 1 within `success_radius`.

    state = (x, y, vx, vy) in cell units, goal = (gx, gy), obs = concat(state, goal) (obs_dim 6,
    state_dim 4, goal_indices (0, 1)); action = force in [-1, 1]² (clipped; non-finite entries act as 0).

    Dynamics per step: v ← damping · v + accel · dt · a, then v is clipped to `max_speed` (per axis, then
    in norm); the mass moves by v · dt, one axis at a time in `substeps` sub-steps (each at most 0.5
    cell), with a swept test against the wall cells: a move that would make the mass overlap a wall stops
    it flush against the wall and zeroes that velocity component. The mass is a square of half-side
    `radius` (so it can neither end inside a wall, cross one, nor slip through a diagonal gap between two
    walls that touch at a corner). With the defaults the mass reaches full speed (2 cells/s = 0.2 cell per
    step) in 3 steps and stops in 2.

    Episodes: the start is an `R` cell centre + uniform noise in ±`reset_noise` (with `random_start`,
    any free cell connected to the goals, uniform over the cell), the goal a `G` cell centre + uniform
    noise in ±`goal_noise`; with `pairs`, a (start cell, goal cell) pair drawn uniformly (stitching).
    The env never terminates (`done` is always 0) unless `terminate_at_goal`, which ends the episode on the
    step that reaches the goal (`done` = `at_goal`; off by default, the paper has no point mazes):
    `EpisodeWrapper` adds the time limit and auto-reset.
    `episode_length` = None picks 15 steps per cell of the longest start→goal shortest path (3× the
    time at full speed), rounded up to a multiple of 50, at least 100: u 100, u4 150, u5 250, big 200,
    hardest 250, open 150.

    info: `distance` (to the goal), `at_goal` (1.0 within `success_radius`, else 0.0).
    """

    layout: Layout | str
    episode_length: int | None = None
    success_radius: float = 0.5
    random_start: bool = False
    pairs: tuple[tuple[int, int], ...] | None = None  # (start, goal) indices into layout.free_cells
    pair_weights: tuple[float, ...] | None = None  # sampling weights of `pairs` (None = uniform)
    terminate_at_goal: bool = False
    name: str = "point-maze"
    dt: float = 0.1
    accel: float = 10.0
    damping: float = 0.8
    max_speed: float = 2.0
    radius: float = 0.1
    reset_noise: float = 0.2
    goal_noise: float = 0.2

    def __post_init__(self):
        object.__setattr__(self, "layout", parse_layout(self.layout))
        if self.random_start and self.pairs is not None:
            raise ValueError("random_start and pairs are exclusive: pairs fix the start cells")
        if not 0.0 < self.radius < 0.5:
            raise ValueError(f"radius={self.radius} must lie in (0, 0.5) cell")

    # ---- static tables (numpy; embedded as constants when traced) ----

    @functools.cached_property
    def _start_and_goal_cells(self) -> tuple[np.ndarray, np.ndarray]:
        return start_and_goal_cells(self.layout, self.pairs, self.random_start)

    @functools.cached_property
    def _wall_table(self) -> np.ndarray:
        """Flattened wall grid padded by one wall cell on each side: outside the layout is wall."""
        return np.pad(self.layout.walls, 1, constant_values=True).reshape(-1)

    @functools.cached_property
    def default_episode_length(self) -> int:
        starts, goals = self._start_and_goal_cells
        dist = cell_distances(self.layout)
        longest = int(
            dist[starts, goals].max() if self.pairs is not None else dist[np.ix_(starts, goals)].max()
        )
        return max(100, 50 * math.ceil(15 * longest / 50))

    @property
    def spec(self) -> EnvSpec:
        return EnvSpec(
            name=self.name,
            obs_dim=6,
            action_dim=2,
            state_dim=4,
            goal_indices=(0, 1),
            episode_length=self.episode_length or self.default_episode_length,
            success_radius=self.success_radius,
        )

    @property
    def substeps(self) -> int:
        return max(1, math.ceil(self.max_speed * self.dt / 0.5))

    # ---- functional API ----

    def reset(self, key: jax.Array) -> State:
        starts, goals = self._start_and_goal_cells
        start_xy, goal_xy = self.layout.centers(starts), self.layout.centers(goals)
        # One draw of 6 uniforms (one hash: resets run every step under a vmapped auto-reset).
        u = jax.random.uniform(key, (6,), jnp.float32)
        pick = lambda x, n: jnp.minimum((x * n).astype(jnp.int32), n - 1)
        if self.pairs is not None:
            i = pick_pair(u[0], self.pair_weights, len(starts))
            start, goal = jnp.asarray(start_xy)[i], jnp.asarray(goal_xy)[i]
        else:
            start, goal = (
                jnp.asarray(start_xy)[pick(u[0], len(starts))],
                jnp.asarray(goal_xy)[pick(u[1], len(goals))],
            )
        start_noise = (0.5 - self.radius) * 0.999 if self.random_start else self.reset_noise
        scale = jnp.array([start_noise, start_noise, self.goal_noise, self.goal_noise], jnp.float32)
        noise = (2.0 * u[2:] - 1.0) * scale
        physics = PointState(pos=start + noise[:2], vel=jnp.zeros(2, jnp.float32), goal=goal + noise[2:])
        return self._state(physics, done=jnp.zeros((), jnp.float32))

    def step(self, state: State, action: jax.Array) -> State:
        physics: PointState = state.physics
        action = jnp.clip(jnp.where(jnp.isfinite(action), action, 0.0), -1.0, 1.0).astype(jnp.float32)
        vel = self.damping * physics.vel + (self.accel * self.dt) * action
        vel = jnp.clip(vel, -self.max_speed, self.max_speed)
        vel = vel * jnp.minimum(1.0, self.max_speed / jnp.maximum(jnp.sqrt(jnp.sum(vel * vel)), 1e-6))
        x, y = physics.pos[0], physics.pos[1]
        vx, vy = vel[0], vel[1]
        h = self.dt / self.substeps
        for _ in range(self.substeps):  # static, unrolled; 1 with the defaults
            x, vx = self._move_axis(x, y, vx, h, along_x=True)
            y, vy = self._move_axis(y, x, vy, h, along_x=False)
        physics = physics.replace(pos=jnp.stack([x, y]), vel=jnp.stack([vx, vy]))
        next_state = self._state(physics, done=jnp.zeros_like(state.done))
        if self.terminate_at_goal:
            return next_state.replace(done=next_state.info["at_goal"])
        return next_state

    def _is_wall(self, row: jax.Array, col: jax.Array) -> jax.Array:
        width = self.layout.width + 2
        index = jnp.clip((row + 1) * width + (col + 1), 0, self._wall_table.size - 1)
        return jnp.asarray(self._wall_table)[index]

    def _move_axis(self, p, q, v, h, along_x: bool):
        """Move coordinate `p` by v·h, with `q` the other coordinate; stop flush at a wall (swept test).

        The displacement is below one cell, so the leading edge enters at most one new line of cells;
        the mass blocks if either cell of that line that its other extent [q - r, q + r] overlaps is a
        wall. `eps` lets the mass slide along a wall it touches without sticking.
        """
        r, eps = self.radius, 1e-4
        d = v * h
        sign = jnp.where(d >= 0, 1.0, -1.0)
        line = jnp.floor(p + sign * r + d)  # the line of cells the leading edge ends in
        lo = jnp.floor(q - r + eps).astype(jnp.int32)
        hi = jnp.floor(q + r - eps).astype(jnp.int32)
        li = line.astype(jnp.int32)
        if along_x:
            blocked = self._is_wall(lo, li) | self._is_wall(hi, li)
        else:
            blocked = self._is_wall(li, lo) | self._is_wall(li, hi)
        flush = jnp.where(sign > 0, line - r, line + 1.0 + r)
        return jnp.where(blocked, flush, p + d), jnp.where(blocked, 0.0, v)

    def _state(self, physics: PointState, done: jax.Array) -> State:
        delta = physics.pos - physics.goal
        distance = jnp.sqrt(jnp.sum(delta * delta))
        at_goal = (distance < self.success_radius).astype(jnp.float32)
        obs = jnp.concatenate([physics.pos, physics.vel, physics.goal])
        info = {"distance": distance, "at_goal": at_goal}
        return State(obs=obs, reward=at_goal, done=done, info=info, physics=physics)
