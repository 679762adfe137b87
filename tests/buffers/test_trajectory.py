"""Trajectory buffer: ring writes, O(1) future-goal relabelling, episode boundaries, offset distribution."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from depthrl.buffers import trajectory as buf


def _fill(rows_per_env, num_envs, total_steps, unroll):
    """Buffer whose 'state' holds [global step, env] so samples can be checked exactly."""
    state = buf.init({"state": jnp.zeros((2,))}, rows_per_env, num_envs)
    for start in range(0, total_steps, unroll):
        t = jnp.arange(start, start + unroll, dtype=jnp.float32)
        chunk = jnp.stack(jnp.broadcast_arrays(t[:, None], jnp.arange(num_envs, dtype=jnp.float32)[None]), -1)
        state = buf.add(state, {"state": chunk})
    return state


def test_ring_keeps_the_newest_rows():
    state = _fill(rows_per_env=7, num_envs=2, total_steps=12, unroll=3)  # 3 does not divide 7
    assert int(state.total_rows) == 12
    stored = sorted(np.asarray(state.data["state"][:, 0, 0]).tolist())
    assert stored == list(range(5, 12))


@pytest.mark.parametrize("rows_per_env,total", [(40, 30), (16, 60)])
def test_samples_stay_in_episode_and_in_buffer(rows_per_env, total):
    L = 10
    state = _fill(rows_per_env, 3, total, 5)
    cur, nxt, fut, k = buf.sample_with_future(state, jax.random.PRNGKey(1), 4096, L, 0.9)
    np.testing.assert_array_equal(nxt["state"][:, 0], cur["state"][:, 0] + 1)
    t, t_future = np.asarray(cur["state"][:, 0]), np.asarray(fut["state"][:, 0])
    oldest = max(0, total - rows_per_env)
    assert np.all(cur["state"][:, 1] == fut["state"][:, 1])  # same env
    assert np.all(t_future - t == np.asarray(k)) and np.all(np.asarray(k) >= 1)
    assert np.all(t // L == t_future // L)  # never crosses an episode boundary
    assert t.min() >= oldest and t_future.max() <= total - 1
    # every valid row is sampled (uniform over rows with a future in the same episode)
    valid = [r for r in range(oldest, total - 1) if r % L != L - 1]
    assert set(t.astype(int).tolist()) == set(valid)


def test_row_sampling_is_uniform():
    L = 5
    state = _fill(64, 1, 40, 8)
    cur, _, _, _ = buf.sample_with_future(state, jax.random.PRNGKey(2), 64_000, L, 0.5)
    counts = np.bincount(np.asarray(cur["state"][:, 0]).astype(int), minlength=40)
    valid = counts[[r for r in range(39) if r % L != L - 1]]
    assert valid.min() > 0.85 * valid.mean() and valid.max() < 1.15 * valid.mean()
    assert counts[[r for r in range(40) if r % L == L - 1 or r == 39]].sum() == 0


def test_truncated_geometric_matches_its_distribution():
    gamma, R, n = 0.8, 6, 200_000
    k = buf.truncated_geometric(jax.random.PRNGKey(3), gamma, jnp.full((n,), R))
    empirical = np.bincount(np.asarray(k), minlength=R + 1)[1:] / n
    expected = gamma ** np.arange(R) * (1 - gamma) / (1 - gamma**R)
    np.testing.assert_allclose(empirical, expected, atol=0.005)


def test_offsets_truncated_at_episode_end():
    L, gamma = 20, 0.99  # long horizon: many offsets want to run past the episode
    state = _fill(200, 2, 200, 10)
    cur, _, _, k = buf.sample_with_future(state, jax.random.PRNGKey(4), 20_000, L, gamma)
    t = np.asarray(cur["state"][:, 0]).astype(int)
    k = np.asarray(k)
    last = t % L == L - 2  # one step left: the only possible offset is 1
    assert np.all(k[last] == 1)
    first = t % L == 0  # 19 steps left: offsets follow the geometric truncated at 19
    expected = gamma ** np.arange(19) * (1 - gamma) / (1 - gamma**19)
    empirical = np.bincount(k[first], minlength=20)[1:] / first.sum()
    np.testing.assert_allclose(empirical, expected, atol=0.03)
    assert int(buf.num_sampleable(state, L)) == 200 - 10 - 0  # 10 episodes' last rows excluded, newest row too
