"""Tests for depthrl.envs.maze: layouts, BFS distances, PointMaze dynamics (no tunnelling), resets."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from maze_oracle import oracle_policy

from depthrl.envs.maze import BUILTIN_LAYOUTS, Layout, PointMaze, cell_distances, parse_layout
from depthrl.envs.wrappers import EpisodeWrapper
from depthrl.errors import ConfigError

U_SLASH = "#####/#RGG#/###G#/#GGG#/#####"


# ---------------------------------------------------------------- layouts


@pytest.mark.parametrize("name", list(BUILTIN_LAYOUTS))
def test_builtin_layouts_parse(name):
    layout = parse_layout(name)
    assert layout.name == name
    assert len(layout.reset_indices) >= 1 and len(layout.goal_indices) >= 1
    assert len({len(row) for row in layout.rows}) == 1
    assert (cell_distances(layout) >= 0).all()  # every built-in maze is connected


def test_u_maze_goal_is_behind_the_wall():
    layout = parse_layout("u")
    dist = cell_distances(layout)
    (start,) = layout.reset_indices
    far = layout.free_cells.tolist().index([3, 1])  # below the start, across the wall row
    assert far in layout.goal_indices.tolist()
    assert layout.walls[2, 1]  # the straight line is blocked
    assert dist[start, far] == 6


def test_slash_newline_and_file_forms_agree(tmp_path):
    path = tmp_path / "maze.txt"
    path.write_text("\n" + U_SLASH.replace("/", "\n") + "\n\n")
    a, b, c = parse_layout(U_SLASH), parse_layout(U_SLASH.replace("/", "\n")), parse_layout(str(path))
    assert a.rows == b.rows == c.rows == parse_layout("u").rows
    assert c.name == str(path)


def test_both_cell_is_reset_and_goal():
    layout = parse_layout("B.#/..#")
    assert layout.reset_indices.tolist() == [0] and layout.goal_indices.tolist() == [0]
    assert layout.width == 3 and layout.height == 2


@pytest.mark.parametrize(
    "text, fragments",
    [
        ("#####/#RG#/#####", ["row 1 (from 0) has 4 columns", "row 0 has 5"]),
        ("#####/#RxG#/#####", ["'x'", "row 1, column 2, counting from 0"]),
        ("####/#..#/#.G#/####", ["no reset cell"]),
        ("####/#R.#/#..#/####", ["no goal cell"]),
        (
            "#####/#R#G#/#####",
            ["goal cell at row 1, column 3", "unreachable", "reset cell at row 1, column 1"],
        ),
        ("no-such-maze", ["not a built-in layout", "u4", "existing file"]),
        ("  /  ", ["empty"]),
    ],
)
def test_bad_layouts_name_the_flag_and_the_place(text, fragments):
    with pytest.raises(ConfigError) as err:
        parse_layout(text)
    message = str(err.value)
    assert err.value.flag == "--layout" and message.startswith("--layout=")
    for fragment in fragments:
        assert fragment in message, (fragment, message)


def test_cell_distances_bfs():
    layout = Layout(("R.#", "#.#", "G.."))
    dist = cell_distances(layout)
    cells = layout.free_cells.tolist()
    i = lambda r, c: cells.index([r, c])
    assert dist[i(0, 0), i(2, 0)] == 4  # around, not through, the wall
    assert dist[i(0, 0), i(2, 2)] == 4
    np.testing.assert_array_equal(dist, dist.T)
    assert (np.diag(dist) == 0).all()
    apart = cell_distances(Layout(("R#G",)))
    assert apart[0, 1] == -1  # unreachable
    assert not dist.flags.writeable


# ---------------------------------------------------------------- env basics


def test_spec_and_shapes():
    env = PointMaze("u")
    spec = env.spec
    assert (spec.obs_dim, spec.action_dim, spec.state_dim, spec.goal_indices) == (6, 2, 4, (0, 1))
    assert spec.episode_length == 100 and env.success_radius == 0.5
    state = jax.jit(env.reset)(jax.random.PRNGKey(0))
    assert state.obs.shape == (6,) and state.obs.dtype == jnp.float32
    state = jax.jit(env.step)(state, jnp.ones(2))
    assert state.obs.shape == (6,) and float(state.done) == 0.0
    assert set(state.info) == {"distance", "at_goal"}
    hash(env)  # static config: closable over by jit


@pytest.mark.parametrize(
    "name, length", [("u", 100), ("u4", 150), ("u5", 250), ("big", 200), ("hardest", 250), ("open", 150)]
)
def test_default_episode_lengths(name, length):
    assert PointMaze(name).spec.episode_length == length
    assert PointMaze(name, episode_length=77).spec.episode_length == 77


def test_reset_and_step_are_deterministic_from_the_key():
    env = PointMaze("hardest")
    keys = jax.random.split(jax.random.PRNGKey(3), 16)
    a, b = jax.vmap(env.reset)(keys), jax.vmap(env.reset)(keys)
    np.testing.assert_array_equal(a.obs, b.obs)
    other = jax.vmap(env.reset)(jax.random.split(jax.random.PRNGKey(4), 16))
    assert not np.array_equal(a.obs, other.obs)
    actions = jax.random.uniform(jax.random.PRNGKey(5), (16, 2), minval=-1, maxval=1)
    step = jax.jit(jax.vmap(env.step))
    np.testing.assert_array_equal(step(a, actions).obs, step(b, actions).obs)


def test_resets_start_at_reset_cells_and_goals_at_goal_cells():
    env = PointMaze("u")
    state = jax.vmap(env.reset)(jax.random.split(jax.random.PRNGKey(0), 2000))
    pos, goal = np.asarray(state.obs[:, :2]), np.asarray(state.obs[:, 4:])
    np.testing.assert_array_less(np.abs(pos - [1.5, 1.5]), env.reset_noise + 1e-6)
    goal_centers = env.layout.centers(env.layout.goal_indices)
    nearest = np.abs(goal[:, None] - goal_centers[None]).max(-1).min(-1)
    assert (nearest <= env.goal_noise + 1e-6).all()
    assert len({tuple(c) for c in np.floor(goal).astype(int)}) == len(goal_centers)  # every goal cell used
    np.testing.assert_array_equal(state.obs[:, 2:4], 0.0)


def test_random_start_covers_every_free_cell():
    env = PointMaze("u", random_start=True)
    state = jax.vmap(env.reset)(jax.random.split(jax.random.PRNGKey(1), 2000))
    pos = np.asarray(state.obs[:, :2])
    cells = {(int(y), int(x)) for x, y in np.floor(pos)}
    assert cells == {tuple(rc) for rc in env.layout.free_cells.tolist()}
    assert_clear_of_walls(env, pos)


def test_non_finite_actions_act_as_zero():
    env = PointMaze("u")
    state = env.reset(jax.random.PRNGKey(0))
    state = env.step(state, jnp.array([1.0, 0.0]))  # some velocity
    step = jax.jit(env.step)
    zero = step(state, jnp.zeros(2))
    for bad in ([jnp.nan, jnp.nan], [jnp.inf, -jnp.inf], [jnp.nan, 0.0]):
        out = step(state, jnp.array(bad))
        assert np.isfinite(out.obs).all()
        np.testing.assert_array_equal(out.obs, zero.obs)
    mixed = step(state, jnp.array([jnp.nan, 1.0]))
    np.testing.assert_array_equal(mixed.obs, step(state, jnp.array([0.0, 1.0])).obs)


def test_actions_are_clipped_and_speed_is_limited():
    env = PointMaze("open")
    state = env.reset(jax.random.PRNGKey(0))
    step = jax.jit(env.step)
    a = step(state, jnp.array([5.0, -7.0]))
    b = step(state, jnp.array([1.0, -1.0]))
    np.testing.assert_array_equal(a.obs, b.obs)
    for _ in range(10):
        state = step(state, jnp.array([1.0, 1.0]))
        assert float(jnp.linalg.norm(state.obs[2:4])) <= env.max_speed + 1e-5


def test_pushing_into_a_wall_stops_flush_and_zeroes_that_velocity():
    env = PointMaze("u")
    state = env.reset(jax.random.PRNGKey(0))
    step = jax.jit(env.step)
    for _ in range(20):  # down into the wall row 2 below the start cell
        state = step(state, jnp.array([0.0, 1.0]))
    x, y, vx, vy = np.asarray(state.obs[:4])
    assert y == pytest.approx(2.0 - env.radius, abs=1e-5) and vy == 0.0
    for _ in range(5):  # slides along the wall without sticking
        state = step(state, jnp.array([1.0, 1.0]))
    assert state.obs[0] > x + 0.3 and state.obs[1] == pytest.approx(2.0 - env.radius, abs=1e-5)


def test_reward_and_info_follow_the_distance():
    env = PointMaze("open")
    state = env.reset(jax.random.PRNGKey(2))
    distance = float(jnp.linalg.norm(state.obs[:2] - state.obs[4:]))
    assert float(state.info["distance"]) == pytest.approx(distance, rel=1e-6)
    assert float(state.reward) == float(state.info["at_goal"]) == float(distance < env.success_radius)


# ---------------------------------------------------------------- no tunnelling


def assert_clear_of_walls(env: PointMaze, pos: np.ndarray, tol: float = 1e-4):
    """The square of half-side `radius` around each position overlaps no wall cell (nor leaves the grid)."""
    walls = np.pad(env.layout.walls, 1, constant_values=True)
    r = env.radius - tol
    for dx in (-r, r):
        for dy in (-r, r):
            col = np.floor(pos[..., 0] + dx).astype(int) + 1
            row = np.floor(pos[..., 1] + dy).astype(int) + 1
            inside = walls[np.clip(row, 0, walls.shape[0] - 1), np.clip(col, 0, walls.shape[1] - 1)]
            assert not inside.any(), pos[inside][:5]


def assert_segments_clear(env: PointMaze, positions: np.ndarray):
    """Consecutive positions [T, N, 2]: the straight segment between them never enters a wall cell."""
    walls = np.pad(env.layout.walls, 1, constant_values=True)
    a, b = positions[:-1], positions[1:]
    for t in np.linspace(0.0, 1.0, 33):
        p = a + t * (b - a)
        cells = np.floor(p).astype(int) + 1
        assert not walls[cells[..., 1], cells[..., 0]].any()
    moved = np.abs(np.floor(b) - np.floor(a)).max()
    assert moved <= 1  # at most into a neighbouring cell per step


def _rollout(env: PointMaze, pos, vel, actions):
    """positions [T + 1, N, 2] from the given start positions/velocities under actions [T, N, 2]."""
    return np.asarray(_run(env, jnp.asarray(pos), jnp.asarray(vel), jnp.asarray(actions)))


@functools.partial(jax.jit, static_argnums=0)  # compiled once per env (envs are hashable)
def _run(env, pos, vel, actions):
    state = jax.vmap(env.reset)(jax.random.split(jax.random.PRNGKey(0), pos.shape[0]))
    state = state.replace(physics=state.physics.replace(pos=pos, vel=vel))

    def body(state, action):
        state = jax.vmap(env.step)(state, action)
        return state, state.physics.pos

    _, positions = jax.lax.scan(body, state, actions)
    return jnp.concatenate([pos[None], positions])


# Each env compiles once; fast variants (max_speed 40 → 8 sub-steps of 0.5 cell) on two mazes.
_ENVS = {(name, False): PointMaze(name) for name in BUILTIN_LAYOUTS} | {
    (name, True): PointMaze(name, max_speed=40.0) for name in ("u", "hardest")
}


def _random_states(env: PointMaze, rng: np.random.Generator, n: int, speed: float):
    cells = env.layout.free_cells[rng.integers(0, len(env.layout.free_cells), n)]
    margin = 0.5 - env.radius
    pos = cells[:, ::-1] + 0.5 + rng.uniform(-margin, margin, (n, 2))
    vel = rng.standard_normal((n, 2)) * speed
    return pos.astype(np.float32), vel.astype(np.float32)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    which=st.sampled_from(list(_ENVS)),
    seed=st.integers(0, 2**31 - 1),
    speed=st.sampled_from([0.0, 0.5, 3.0, 1e3, 1e30]),
    action_scale=st.sampled_from([0.1, 1.0, 1e6]),
    bad_fraction=st.sampled_from([0.0, 0.2]),
)
def test_no_tunnelling_in_builtin_mazes(which, seed, speed, action_scale, bad_fraction):
    env, fast = _ENVS[which], which[1]
    rng = np.random.default_rng(seed)
    n, steps = 64, 40
    pos, vel = _random_states(env, rng, n, speed)
    actions = (rng.standard_normal((steps, n, 2)) * action_scale).astype(np.float32)
    bad = rng.random(actions.shape) < bad_fraction
    actions[bad] = rng.choice(np.array([np.nan, np.inf, -np.inf], np.float32), bad.sum())
    positions = _rollout(env, pos, vel, actions)
    assert np.isfinite(positions).all()
    assert_clear_of_walls(env, positions)
    if not fast:  # with sub-steps the straight segment is not the path, so only check cells
        assert_segments_clear(env, positions)


@st.composite
def random_layouts(draw):
    height, width = draw(st.integers(2, 6)), draw(st.integers(2, 6))
    walls = draw(st.lists(st.booleans(), min_size=height * width, max_size=height * width))
    rows = ["".join("#" if w else "." for w in walls[r * width : (r + 1) * width]) for r in range(height)]
    if all(ch == "#" for row in rows for ch in row):
        rows[0] = "." + rows[0][1:]
    r, c = next((r, c) for r in range(height) for c in range(width) if rows[r][c] == ".")
    rows[r] = rows[r][:c] + "B" + rows[r][c + 1 :]
    return Layout(tuple(rows))


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(layout=random_layouts(), seed=st.integers(0, 2**31 - 1))
def test_no_tunnelling_in_random_layouts(layout, seed):
    env = PointMaze(layout, max_speed=2.0)
    rng = np.random.default_rng(seed)
    pos, vel = _random_states(env, rng, 64, 5.0)
    actions = rng.uniform(-1, 1, (60, 64, 2)).astype(np.float32)
    actions[:20] = np.sign(actions[:20])  # full force bursts into walls and corners
    positions = _rollout(env, pos, vel, actions)
    assert_clear_of_walls(env, positions)
    assert_segments_clear(env, positions)


def test_diagonal_gap_between_touching_walls_is_closed():
    # Free cells (0, 0) and (1, 1) touch only at a corner: the mass must not pass from one to the other.
    env = PointMaze(Layout(("B#", "#.")), max_speed=2.0)
    pos = np.array([[0.85, 0.85]], np.float32)
    positions = _rollout(env, pos, np.zeros((1, 2), np.float32), np.ones((50, 1, 2), np.float32))
    assert (positions < 1.0).all()


# ---------------------------------------------------------------- solvable with margin


@pytest.mark.parametrize("name", list(BUILTIN_LAYOUTS))
def test_scripted_shortest_path_controller_solves_every_maze_with_margin(name):
    maze = PointMaze(name)
    length = maze.spec.episode_length
    env, policy = EpisodeWrapper(maze, length), jax.vmap(oracle_policy(maze))

    @jax.jit
    def run(keys):
        state = jax.vmap(env.reset)(keys)

        def body(state, _):
            state = jax.vmap(env.step)(state, policy(state.obs))
            return state, (state.info["at_goal"], state.info["episode_metrics"])

        return jax.lax.scan(body, state, None, length=length)[1]

    at_goal, metrics = run(jax.random.split(jax.random.PRNGKey(0), 256))
    first_arrival = np.argmax(np.asarray(at_goal) > 0, axis=0)
    assert float(metrics["success"][-1].min()) == 1.0
    assert first_arrival.max() < 0.4 * length  # the farthest goal is reached with > 2.5x margin
    assert float(metrics["time_at_goal"][-1].mean()) > 0.7
