"""Trajectory buffer: ring writes, O(1) future-goal relabelling, episode boundaries (fixed-length and
early-terminated episodes), offset distribution."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from depthrl.buffers import trajectory as buf


def _fill(rows_per_env, num_envs, total_steps, unroll, episode_length=None, done=None):
    """Buffer whose 'state' holds [global step, env, episode id] so samples can be checked exactly.

    Episodes end where done [total_steps, num_envs] is true, else every `episode_length` steps."""
    if done is None:
        done = np.broadcast_to((np.arange(total_steps) % episode_length == episode_length - 1)[:, None],
                               (total_steps, num_envs))
    episode = np.concatenate([np.zeros((1, num_envs)), np.cumsum(done, axis=0)[:-1]])  # id of each row's episode
    state = buf.init({"state": jnp.zeros((3,))}, rows_per_env, num_envs)
    add = jax.jit(buf.add)
    for start in range(0, total_steps, unroll):
        t = np.arange(start, start + unroll)
        chunk = np.stack(np.broadcast_arrays(t[:, None], np.arange(num_envs)[None], episode[t]), -1)
        state = add(state, {"state": jnp.asarray(chunk, jnp.float32)}, jnp.asarray(done[t]))
    return state


def _random_done(total_steps, num_envs, time_limit, p_terminate, seed):
    """Early terminations with probability p per step, and a time limit counted from each episode's start."""
    rng = np.random.default_rng(seed)
    done = np.zeros((total_steps, num_envs), bool)
    since_start = np.zeros(num_envs, int)
    for t in range(total_steps):
        since_start += 1
        done[t] = (rng.random(num_envs) < p_terminate) | (since_start >= time_limit)
        since_start[done[t]] = 0
    return done


def _episode_last_rows(done, oldest, newest):
    """[T, N] per logical row: the last row of its episode written so far (its ending row or the newest)."""
    last = np.full(done.shape, newest)
    for e in range(done.shape[1]):
        end = newest
        for t in range(newest, -1, -1):
            end = t if done[t, e] else end
            last[t, e] = end
    return last


def test_ring_keeps_the_newest_rows():
    state = _fill(rows_per_env=7, num_envs=2, total_steps=12, unroll=3, episode_length=5)  # 3 does not divide 7
    assert int(state.total_rows) == 12
    stored = sorted(np.asarray(state.data["state"][:, 0, 0]).tolist())
    assert stored == list(range(5, 12))


@pytest.mark.parametrize("rows_per_env,total", [(40, 30), (16, 60)])
def test_samples_stay_in_episode_and_in_buffer(rows_per_env, total):
    L = 10
    state = _fill(rows_per_env, 3, total, 5, L)
    cur, nxt, fut, k = buf.sample_with_future(state, jax.random.PRNGKey(1), 4096, 0.9)
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
    state = _fill(64, 1, 40, 8, L)
    cur, _, _, _ = buf.sample_with_future(state, jax.random.PRNGKey(2), 64_000, 0.5)
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
    state = _fill(200, 2, 200, 10, L)
    cur, _, _, k = buf.sample_with_future(state, jax.random.PRNGKey(4), 20_000, gamma)
    t = np.asarray(cur["state"][:, 0]).astype(int)
    k = np.asarray(k)
    last = t % L == L - 2  # one step left: the only possible offset is 1
    assert np.all(k[last] == 1)
    first = t % L == 0  # 19 steps left: offsets follow the geometric truncated at 19
    expected = gamma ** np.arange(19) * (1 - gamma) / (1 - gamma**19)
    empirical = np.bincount(k[first], minlength=20)[1:] / first.sum()
    np.testing.assert_allclose(empirical, expected, atol=0.03)
    np.testing.assert_array_equal(buf.num_sampleable(state), [190, 190])  # 10 episodes' last rows, newest row


@pytest.mark.parametrize("rows_per_env,total,unroll", [(48, 90, 6), (64, 50, 5)])
def test_fixed_length_draws_equal_the_closed_form_sampler(rows_per_env, total, unroll):
    """With fixed-length episodes the counts are the closed forms x − x // L and their inverse, so a key draws
    exactly the rows and offsets of the fixed-length sampler (written out here): runs on the point mazes,
    which never end early, are unchanged."""
    L, batch, gamma = 8, 512, 0.9
    state = _fill(rows_per_env, 3, total, unroll, L)
    key = jax.random.PRNGKey(5)
    cur, _, _, k = buf.sample_with_future(state, key, batch, gamma)
    env_key, row_key, offset_key = jax.random.split(key, 3)
    env = jax.random.randint(env_key, (batch,), 0, 3)
    oldest, newest = max(total - rows_per_env, 0), total - 1
    lo, hi = oldest - oldest // L, newest - newest // L
    n = jax.random.randint(row_key, (batch,), lo, hi)
    row = n + n // (L - 1)
    offsets = buf.truncated_geometric(offset_key, gamma, jnp.minimum(L - 1 - row % L, newest - row))
    np.testing.assert_array_equal(cur["state"][:, 1], env)
    np.testing.assert_array_equal(cur["state"][:, 0], row)
    np.testing.assert_array_equal(k, offsets)


@pytest.mark.parametrize("rows_per_env,total,unroll", [(50, 50, 10), (37, 119, 7)])
def test_no_future_goal_crosses_an_episode_end_with_random_terminations(rows_per_env, total, unroll):
    num_envs = 4
    done = _random_done(total, num_envs, time_limit=12, p_terminate=0.15, seed=rows_per_env)
    state = _fill(rows_per_env, num_envs, total, unroll, done=done)
    cur, nxt, fut, k = (np.asarray(x["state"]) if isinstance(x, dict) else np.asarray(x)
                        for x in buf.sample_with_future(state, jax.random.PRNGKey(6), 20_000, 0.9))
    t, env, episode = cur[:, 0].astype(int), cur[:, 1].astype(int), cur[:, 2]
    oldest, newest = max(0, total - rows_per_env), total - 1
    assert np.all(fut[:, 1] == env) and np.all(nxt[:, 1] == env)
    assert np.all(fut[:, 2] == episode) and np.all(nxt[:, 2] == episode)  # same episode, never the next
    np.testing.assert_array_equal(nxt[:, 0], t + 1)
    assert np.all(fut[:, 0] - t == k) and np.all(k >= 1)
    assert t.min() >= oldest and fut[:, 0].max() <= newest
    assert not done[t, env].any()  # a row that ended its episode has no successor of that episode
    for e in range(num_envs):  # every row with a successor of its episode is sampled, and only those
        valid = {r for r in range(oldest, newest) if not done[r, e]}
        assert set(t[env == e].tolist()) == valid
    np.testing.assert_array_equal(buf.num_sampleable(state),
                                  [sum(not done[r, e] for r in range(oldest, newest)) for e in range(num_envs)])
    last = _episode_last_rows(done, oldest, newest)
    np.testing.assert_array_equal(buf.episode_last_row(state, jnp.asarray(t), jnp.asarray(env)), last[t, env])


def test_offset_distribution_within_terminated_episodes_is_the_truncated_geometric():
    """Chi-square of the sampled (row, offset) pairs against their exact probabilities: env uniform, row
    uniform among the env's rows with a successor of the same episode, offset ∝ γ^(k−1) on 1..rows left in
    the episode (computed here from the done flags, not by the buffer)."""
    num_envs, total, rows_per_env, gamma, n = 2, 30, 24, 0.7, 200_000
    done = _random_done(total, num_envs, time_limit=9, p_terminate=0.2, seed=7)
    state = _fill(rows_per_env, num_envs, total, 6, done=done)
    cur, _, _, k = buf.sample_with_future(state, jax.random.PRNGKey(8), n, gamma)
    t, env, k = np.asarray(cur["state"][:, 0]).astype(int), np.asarray(cur["state"][:, 1]).astype(int), np.asarray(k)
    oldest, newest = total - rows_per_env, total - 1
    last = _episode_last_rows(done, oldest, newest)
    expected, cells = [], {}
    for e in range(num_envs):
        rows = [r for r in range(oldest, newest) if not done[r, e]]
        for r in rows:
            steps_left = last[r, e] - r
            for offset in range(1, steps_left + 1):
                cells[(e, r, offset)] = len(expected)
                expected.append(gamma ** (offset - 1) * (1 - gamma) / (1 - gamma**steps_left) / len(rows) / num_envs)
    observed = np.zeros(len(expected))
    for key, count in zip(*np.unique(np.stack([env, t, k], 1), axis=0, return_counts=True), strict=True):
        observed[cells[tuple(key)]] = count  # KeyError if a sample fell outside the support
    expected = np.asarray(expected) * n
    np.testing.assert_allclose(expected.sum(), n)
    keep = expected >= 5  # pool the rare cells, as the chi-square approximation needs
    f_obs, f_exp = observed[keep], expected[keep]
    if (~keep).any():
        f_obs, f_exp = np.append(f_obs, observed[~keep].sum()), np.append(f_exp, expected[~keep].sum())
    assert len(f_obs) > 50  # enough (row, offset) cells for the test to have power
    assert stats.chisquare(f_obs, f_exp).pvalue > 1e-3
