"""The stitching protocols: the paper code's forward pairs (equal weight per distance) and depthrl's all-pairs."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from depthrl.envs.maze import cell_distances, parse_layout, pick_pair
from depthrl.envs.registry import EnvConfig, make_envs
from depthrl.envs.stitching import forward_path, pair_set
from depthrl.envs.wrappers import unwrapped
from depthrl.errors import ConfigError

# The U4-maze's forward path as the paper's code walks it (scaling-crl envs/ant_maze_generalization.py,
# `get_forward_path` on U4_MAZE): (row, column) from the R cell round the wall to the G cell.
REFERENCE_U4_PATH = [(2, 1), (1, 1), (1, 2), (1, 3), (2, 3), (3, 3), (4, 3), (5, 3), (5, 2), (5, 1), (4, 1)]


def test_forward_path_is_the_reference_walk():
    layout = parse_layout("u4")
    assert [tuple(int(v) for v in layout.free_cells[i]) for i in forward_path(layout)] == REFERENCE_U4_PATH


@pytest.mark.parametrize(("low", "high"), [(1, 3), (4, 6)])
def test_forward_pairs_go_forward_with_equal_weight_per_distance(low, high):
    """6000 draws of the point-maze U4's pair sampler under `--stitch-pairs forward`: every pair has its goal d
    cells further along the reference path (d in low..high, the paper's `1f2f3f` / `4f5f6f`), each distance is
    drawn a third of the time (±0.03, 5 standard deviations) although the path has 11 - d pairs at distance d,
    and every such pair occurs."""
    train, evaluation = make_envs(EnvConfig(env="point-maze-u4", stitching=True, stitch_pairs="forward"))
    env = unwrapped(train if low == 1 else evaluation)
    u = jax.random.uniform(jax.random.PRNGKey(0), (6000,))
    drawn = np.asarray(env.pairs)[np.asarray(pick_pair(u, env.pair_weights, len(env.pairs)))]
    position = {cell: i for i, cell in enumerate(REFERENCE_U4_PATH)}
    cells = [tuple(int(v) for v in rc) for rc in env.layout.free_cells]
    start = np.array([position[cells[s]] for s in drawn[:, 0]])
    steps = np.array([position[cells[g]] for g in drawn[:, 1]]) - start
    np.testing.assert_allclose([np.mean(steps == d) for d in range(low, high + 1)], 1 / 3, atol=0.03)
    assert steps.min() >= low and steps.max() <= high
    for d in range(low, high + 1):
        assert len(set(start[steps == d].tolist())) == 11 - d
    layout = parse_layout("u4")  # along this corridor the path distance is the BFS distance
    pairs, _ = pair_set(layout, "forward", low, high)
    dist = cell_distances(layout)
    assert sorted(int(dist[s, g]) for s, g in pairs) == sorted(d for d in range(low, high + 1) for _ in range(11 - d))


def test_all_pairs_protocol_is_unchanged_and_uniform():
    layout = parse_layout("u4")
    pairs, weights = pair_set(layout, "all", 1, 3)
    assert weights is None and len(pairs) == 2 * (10 + 9 + 8)  # both directions along the corridor


@pytest.mark.parametrize(("overrides", "fragment"), [
    (dict(env="point-maze", layout="open", stitching=True, stitch_pairs="forward"), "exactly one R cell"),
    (dict(env="point-maze-big", stitching=True, stitch_pairs="forward"), "branches"),
    (dict(env="point-maze", layout="#####/#R..#/#.#.#/#..G#/#####", stitching=True, stitch_pairs="forward"),
     "branches"),
    (dict(stitch_pairs="forward"), "only used with --stitching"),
    (dict(stitching=True, stitch_pairs="reverse"), "choose one of all, forward"),
])
def test_invalid_stitch_pairs_name_the_flag(overrides, fragment):
    with pytest.raises(ConfigError, match="--stitch-pairs") as error:
        EnvConfig(**overrides).validate()
    assert fragment in str(error.value)
