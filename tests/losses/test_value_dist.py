"""Tests for depthrl.losses.value_dist: hand-computed cases, invariants and property tests."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from depthrl.errors import ConfigError
from depthrl.losses.value_dist import (
    CRITIC_LOSSES,
    ValueSupport,
    c51_project,
    clip_range,
    cross_entropy,
    expected_value,
    hl_gauss_target,
    mse_loss,
    out_of_support_fraction,
    support_from_reward_range,
    symexp,
    symlog,
    two_hot_target,
    value_loss,
)

SUPPORT = ValueSupport(v_min=-10.0, v_max=10.0, num_bins=51)
SYMLOG_SUPPORT = ValueSupport(v_min=-1000.0, v_max=1000.0, num_bins=101, transform="symlog")
PROPERTY = settings(max_examples=40, deadline=None)

# Compiled once per support: hypothesis then calls them with new values of the same shape (no retrace).
_hl_gauss = jax.jit(hl_gauss_target, static_argnums=(1,))
_two_hot = jax.jit(two_hot_target, static_argnums=(1,))


def _mean_over_centers(probs, support):
    return float(np.sum(np.asarray(probs, np.float64) * support.centers.astype(np.float64), axis=-1))


def _phi(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


# --- ValueSupport ----------------------------------------------------------------------------------


def test_support_geometry():
    support = ValueSupport(v_min=0.0, v_max=3.0, num_bins=3)
    np.testing.assert_allclose(support.edges, [0.0, 1.0, 2.0, 3.0])
    np.testing.assert_allclose(support.centers, [0.5, 1.5, 2.5])
    assert support.bin_width == pytest.approx(1.0)
    assert support.edges.shape == (4,) and support.edges.dtype == np.float32
    assert support.centers.shape == (3,) and support.centers.dtype == np.float32


def test_symlog_support_bins_are_uniform_in_symlog_space():
    support = ValueSupport(v_min=-100.0, v_max=100.0, num_bins=4, transform="symlog")
    hi = math.log1p(100.0)
    np.testing.assert_allclose(support.edges, [-hi, -hi / 2, 0.0, hi / 2, hi], rtol=1e-6, atol=1e-6)
    assert support.bin_width == pytest.approx(hi / 2)
    np.testing.assert_allclose(
        support.center_values, np.sign(support.centers) * np.expm1(np.abs(support.centers)), rtol=1e-5
    )


def test_support_is_hashable_static():
    assert hash(SUPPORT) == hash(ValueSupport(-10.0, 10.0, 51))
    jax.jit(hl_gauss_target, static_argnums=(1,))(jnp.zeros(3), SUPPORT)  # usable as a static argument


@pytest.mark.parametrize(
    ("kwargs", "flag"),
    [
        ({"v_min": 1.0, "v_max": 1.0, "num_bins": 10}, "--v-max"),
        ({"v_min": 2.0, "v_max": -2.0, "num_bins": 10}, "--v-max"),
        ({"v_min": float("-inf"), "v_max": 1.0, "num_bins": 10}, "--v-min"),
        ({"v_min": 0.0, "v_max": float("nan"), "num_bins": 10}, "--v-max"),
        ({"v_min": 0.0, "v_max": 1.0, "num_bins": 1}, "--num-bins"),
        ({"v_min": 0.0, "v_max": 1.0, "num_bins": 0}, "--num-bins"),
        ({"v_min": 0.0, "v_max": 1.0, "num_bins": 10.5}, "--num-bins"),
        ({"v_min": 0.0, "v_max": 1.0, "num_bins": 10, "transform": "log"}, "--value-transform"),
    ],
)
def test_invalid_support_raises_config_error_naming_flag(kwargs, flag):
    with pytest.raises(ConfigError) as info:
        ValueSupport(**kwargs)
    assert info.value.flag == flag
    assert flag in str(info.value)


def test_validate_returns_self():
    assert SUPPORT.validate() is SUPPORT


def test_support_from_reward_range():
    support = support_from_reward_range(-1.0, 2.0, gamma=0.9, num_bins=21)
    assert support.v_min == pytest.approx(-10.0) and support.v_max == pytest.approx(20.0)
    assert support.num_bins == 21 and support.transform == "none"
    # All-positive rewards with termination: a one-step episode returns r_min, below r_min/(1−γ).
    episodic = support_from_reward_range(1.0, 2.0, gamma=0.99, num_bins=11, terminating=True)
    assert episodic.v_min == pytest.approx(1.0) and episodic.v_max == pytest.approx(200.0)
    with pytest.raises(ConfigError, match="--gamma"):
        support_from_reward_range(-1.0, 1.0, gamma=1.0, num_bins=11)
    with pytest.raises(ConfigError, match="--r-max"):
        support_from_reward_range(1.0, -1.0, gamma=0.5, num_bins=11)
    with pytest.raises(ConfigError, match="--v-max"):  # r_min == r_max: an empty range
        support_from_reward_range(1.0, 1.0, gamma=0.5, num_bins=11)


# --- symlog ----------------------------------------------------------------------------------------


@PROPERTY
@given(st.floats(min_value=-1e6, max_value=1e6, allow_nan=False))
def test_symlog_round_trip(x):
    x32 = np.float32(x)
    back = float(symexp(symlog(jnp.float32(x32))))
    assert back == pytest.approx(float(x32), rel=1e-5, abs=1e-6)


def test_symlog_values():
    np.testing.assert_allclose(
        symlog(jnp.array([-math.e + 1, 0.0, 1.0])), [-1.0, 0.0, math.log(2.0)], rtol=1e-6
    )


# --- HL-Gauss --------------------------------------------------------------------------------------


def test_hl_gauss_hand_computed_three_bins():
    # Edges [0, 1, 2, 3], σ = 0.75·1, y = 1.2. p_i ∝ Φ((e_{i+1} − y)/σ) − Φ((e_i − y)/σ).
    support = ValueSupport(v_min=0.0, v_max=3.0, num_bins=3)
    y, sigma = 1.2, 0.75
    cdf = [_phi((e - y) / sigma) for e in (0.0, 1.0, 2.0, 3.0)]
    raw = [cdf[1] - cdf[0], cdf[2] - cdf[1], cdf[3] - cdf[2]]
    expected = [p / (cdf[3] - cdf[0]) for p in raw]
    np.testing.assert_allclose(hl_gauss_target(jnp.float32(y), support), expected, rtol=1e-5)


def test_hl_gauss_hand_computed_two_bins_symmetric():
    # y on the middle edge: by symmetry each of the two bins holds half the mass.
    support = ValueSupport(v_min=-1.0, v_max=1.0, num_bins=2)
    np.testing.assert_allclose(hl_gauss_target(jnp.float32(0.0), support), [0.5, 0.5], rtol=1e-6)


def test_hl_gauss_sigma_ratio_sets_spread():
    narrow = hl_gauss_target(jnp.float32(0.0), SUPPORT, sigma_ratio=0.25)
    wide = hl_gauss_target(jnp.float32(0.0), SUPPORT, sigma_ratio=2.0)
    assert float(jnp.max(narrow)) > float(jnp.max(wide))
    with pytest.raises(ConfigError, match="--sigma-ratio"):
        hl_gauss_target(jnp.float32(0.0), SUPPORT, sigma_ratio=0.0)


@PROPERTY
@given(st.floats(min_value=-1e4, max_value=1e4, allow_nan=False))
def test_targets_sum_to_one(y):
    for support in (SUPPORT, SYMLOG_SUPPORT):
        for probs in (_hl_gauss(jnp.float32(y), support), _two_hot(jnp.float32(y), support)):
            probs = np.asarray(probs)
            assert probs.shape == (support.num_bins,)
            assert np.all(probs >= -1e-7)
            assert probs.sum() == pytest.approx(1.0, abs=1e-5)


# Tolerance for the HL-Gauss mean. Over centres spaced Δ apart, binning a Gaussian N(y, σ²) biases its
# mean by a periodic term of amplitude (Δ/π)·exp(−2π²σ²/Δ²) (Poisson summation; the leading Fourier
# mode of the rounding sawtooth). At σ = 0.75Δ that is 4.8e-6·Δ. Renormalising the truncated tails adds
# at most σ·φ(d/σ) for a distance d to the nearest edge: below 1e-8·Δ when d >= 6σ = 4.5Δ. The rest is
# float32 rounding of 51 products of size <= 10 (~1e-5). 1e-4 · Δ + 1e-4 covers all three.
_HL_MEAN_ATOL = 1e-4 * SUPPORT.bin_width + 1e-4


@PROPERTY
@given(st.floats(min_value=-10.0 + 4.5 * 0.392, max_value=10.0 - 4.5 * 0.392, allow_nan=False))
def test_hl_gauss_mean_equals_target_inside_support(y):
    probs = _hl_gauss(jnp.float32(y), SUPPORT)
    assert _mean_over_centers(probs, SUPPORT) == pytest.approx(float(np.float32(y)), abs=_HL_MEAN_ATOL)


def test_hl_gauss_mean_is_pulled_inwards_at_the_edges():
    # Documented consequence of renormalising by the in-support mass: at y = v_max the histogram is a
    # half-Gaussian, so its mean lies ~σ·√(2/π) inside the support; values are recoverable only inside.
    mean = _mean_over_centers(hl_gauss_target(jnp.float32(10.0), SUPPORT), SUPPORT)
    assert 10.0 - 2 * SUPPORT.bin_width < mean < 10.0


# --- two-hot ---------------------------------------------------------------------------------------


def test_two_hot_hand_computed():
    support = ValueSupport(v_min=0.0, v_max=3.0, num_bins=3)  # centres 0.5, 1.5, 2.5
    np.testing.assert_allclose(two_hot_target(jnp.float32(1.25), support), [0.25, 0.75, 0.0], atol=1e-6)
    np.testing.assert_allclose(two_hot_target(jnp.float32(1.5), support), [0.0, 1.0, 0.0], atol=1e-6)
    np.testing.assert_allclose(two_hot_target(jnp.float32(0.0), support), [1.0, 0.0, 0.0], atol=1e-6)
    np.testing.assert_allclose(two_hot_target(jnp.float32(2.5), support), [0.0, 0.0, 1.0], atol=1e-6)


@PROPERTY
@given(st.floats(min_value=-9.8, max_value=9.8, allow_nan=False))
def test_two_hot_mean_equals_target_exactly(y):
    # Inside [c_0, c_last] = [−9.8, 9.8] the two-hot mean is y up to float32 rounding.
    probs = _two_hot(jnp.float32(y), SUPPORT)
    assert np.count_nonzero(np.asarray(probs) > 1e-6) <= 2
    assert _mean_over_centers(probs, SUPPORT) == pytest.approx(float(np.float32(y)), abs=1e-5)


def test_two_hot_symlog_mean_is_exact_in_symlog_space():
    y = jnp.array([-123.0, 0.0, 7.5, 600.0])
    probs = two_hot_target(y, SYMLOG_SUPPORT)
    mean = np.asarray(probs) @ SYMLOG_SUPPORT.centers
    np.testing.assert_allclose(mean, symlog(y), atol=1e-5)
    np.testing.assert_allclose(symexp(jnp.asarray(mean)), y, rtol=1e-4, atol=1e-5)


# --- clipping --------------------------------------------------------------------------------------


@pytest.mark.parametrize("support", [SUPPORT, SYMLOG_SUPPORT], ids=["none", "symlog"])
@pytest.mark.parametrize("target_fn", [hl_gauss_target, two_hot_target], ids=["hl-gauss", "two-hot"])
def test_values_outside_support_are_clipped(target_fn, support):
    above = target_fn(jnp.float32(support.v_max + 10.0), support)
    np.testing.assert_allclose(above, target_fn(jnp.float32(support.v_max), support), atol=1e-6)
    below = target_fn(jnp.float32(support.v_min - 1e6), support)
    np.testing.assert_allclose(below, target_fn(jnp.float32(support.v_min), support), atol=1e-6)
    infinite = target_fn(jnp.float32(jnp.inf), support)
    np.testing.assert_allclose(infinite, above, atol=1e-6)


# --- C51 -------------------------------------------------------------------------------------------

C51_SUPPORT = ValueSupport(v_min=-0.5, v_max=2.5, num_bins=3)  # atoms (centres) 0, 1, 2


@pytest.mark.parametrize(
    ("next_probs", "reward", "discount", "expected"),
    [
        ([1.0, 0.0, 0.0], 1.0, 1.0, [0.0, 1.0, 0.0]),  # shift by exactly one bin
        ([0.2, 0.5, 0.3], 1.0, 1.0, [0.0, 0.2, 0.8]),  # the top atom moves to 3, clipped to 2
        ([1.0, 0.0, 0.0], 0.5, 1.0, [0.5, 0.5, 0.0]),  # lands halfway between two atoms
        ([0.2, 0.5, 0.3], 1.25, 0.0, [0.0, 0.75, 0.25]),  # γ = 0: every atom lands on r
        ([0.2, 0.5, 0.3], 0.0, 0.5, [0.45, 0.55, 0.0]),  # atoms 0, 0.5, 1: [a + b/2, b/2 + c, 0]
        ([0.2, 0.5, 0.3], -5.0, 0.9, [1.0, 0.0, 0.0]),  # everything below the support
    ],
)
def test_c51_project_hand_computed(next_probs, reward, discount, expected):
    projected = c51_project(jnp.array(next_probs), jnp.float32(reward), jnp.float32(discount), C51_SUPPORT)
    np.testing.assert_allclose(projected, expected, atol=1e-6)


def test_c51_project_batched_and_jitted():
    rng = np.random.default_rng(0)
    # Mass only on atoms in [−5.9, 5.9], so r + γz (|r| <= 2) is never clipped and the mean is kept.
    inner = np.abs(SUPPORT.centers) < 6.0
    weights = np.where(inner, rng.uniform(size=(4, 5, SUPPORT.num_bins)), 0.0)
    probs = (weights / weights.sum(-1, keepdims=True)).astype(np.float32)
    rewards = jnp.asarray(rng.uniform(-2.0, 2.0, (4, 5)), jnp.float32)
    discounts = jnp.asarray(0.99 * (rng.uniform(size=(4, 5)) < 0.8), jnp.float32)
    projected = jax.jit(c51_project, static_argnums=(3,))(probs, rewards, discounts, SUPPORT)
    assert projected.shape == (4, 5, SUPPORT.num_bins)
    np.testing.assert_allclose(jnp.sum(projected, -1), 1.0, atol=1e-5)
    # Linear interpolation preserves the mean when nothing is clipped: E[ΦTZ] = r + γ·E[Z].
    inside = np.asarray(rewards) + np.asarray(discounts) * (probs @ SUPPORT.centers)
    np.testing.assert_allclose(projected @ SUPPORT.centers, inside, atol=1e-4)


def test_c51_project_symlog_terminal_is_two_hot_of_reward():
    probs = jax.nn.softmax(jnp.linspace(-1.0, 1.0, SYMLOG_SUPPORT.num_bins))
    projected = c51_project(probs, jnp.float32(42.0), jnp.float32(0.0), SYMLOG_SUPPORT)
    np.testing.assert_allclose(projected, two_hot_target(jnp.float32(42.0), SYMLOG_SUPPORT), atol=1e-5)


def test_c51_project_rejects_wrong_bin_count():
    with pytest.raises(ValueError, match="bins"):
        c51_project(jnp.ones(4) / 4, jnp.float32(0.0), jnp.float32(0.9), C51_SUPPORT)


# --- cross-entropy, expected value, MSE ------------------------------------------------------------


def test_cross_entropy_hand_computed():
    logits = jnp.array([0.0, math.log(3.0)])  # softmax = [1/4, 3/4]
    target = jnp.array([0.5, 0.5])
    expected = -(0.5 * math.log(0.25) + 0.5 * math.log(0.75))
    assert float(cross_entropy(logits, target)) == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("y", [SUPPORT.v_min, SUPPORT.v_max, 0.0])
@pytest.mark.parametrize("target_fn", [hl_gauss_target, two_hot_target], ids=["hl-gauss", "two-hot"])
def test_cross_entropy_gradient_is_softmax_minus_target(target_fn, y):
    logits = jnp.asarray(np.random.default_rng(1).normal(size=SUPPORT.num_bins) * 3.0, jnp.float32)
    target = target_fn(jnp.float32(y), SUPPORT)
    grad = jax.grad(cross_entropy)(logits, target)
    assert np.all(np.isfinite(grad))
    np.testing.assert_allclose(grad, jax.nn.softmax(logits) - target, atol=1e-6)


def test_cross_entropy_stops_gradient_through_target():
    logits = jnp.zeros(3)
    grad_target = jax.grad(cross_entropy, argnums=1)(logits, jnp.array([0.2, 0.3, 0.5]))
    np.testing.assert_array_equal(grad_target, 0.0)


def test_expected_value():
    support = ValueSupport(v_min=0.0, v_max=3.0, num_bins=3)
    logits = jnp.log(jnp.array([[0.2, 0.3, 0.5], [1.0, 1e-30, 1e-30]]))
    np.testing.assert_allclose(expected_value(logits, support), [0.1 + 0.45 + 1.25, 0.5], rtol=1e-5)


def test_expected_value_inverts_symlog():
    y = jnp.array([-500.0, -3.0, 0.0, 2.0, 900.0])
    logits = jnp.log(two_hot_target(y, SYMLOG_SUPPORT) + 1e-30)
    np.testing.assert_allclose(expected_value(logits, SYMLOG_SUPPORT), y, rtol=1e-4, atol=1e-4)


def test_mse_loss():
    np.testing.assert_allclose(mse_loss(jnp.array([1.0, -2.0]), jnp.array([3.0, -2.0])), [2.0, 0.0])
    grad = jax.grad(lambda p, t: mse_loss(p, t).sum(), argnums=(0, 1))(jnp.array([1.0]), jnp.array([3.0]))
    np.testing.assert_allclose(grad[0], [-2.0])
    np.testing.assert_allclose(grad[1], [0.0])  # the TD target is a constant


# --- out-of-support fraction -----------------------------------------------------------------------


def test_out_of_support_fraction():
    y = jnp.array([[-11.0, -10.0, 0.0, 10.0], [10.5, 3.0, jnp.inf, -jnp.inf]])
    assert float(out_of_support_fraction(y, SUPPORT)) == pytest.approx(4 / 8)
    assert float(out_of_support_fraction(jnp.zeros(7), SUPPORT)) == 0.0
    assert float(out_of_support_fraction(jnp.array([2000.0, -5.0]), SYMLOG_SUPPORT)) == pytest.approx(0.5)
    noisy = np.random.default_rng(2).normal(size=20_000) * 10.0  # P(|N(0,1)| > 1) = 0.3173
    assert float(out_of_support_fraction(noisy, SUPPORT)) == pytest.approx(0.3173, abs=0.015)


def test_out_of_support_counts_the_outer_half_bins_for_two_hot_and_c51():
    # SUPPORT: [-10, 10], 51 bins of width 20/51, so the extreme centres are ±(10 − 10/51) = ±9.80392.
    assert clip_range(SUPPORT, "two-hot") == pytest.approx((-9.80392, 9.80392), abs=1e-5)
    assert clip_range(SUPPORT, "c51") == clip_range(SUPPORT, "two-hot")
    assert clip_range(SUPPORT, "hl-gauss") == clip_range(SUPPORT) == (-10.0, 10.0)
    y = jnp.array([-9.9, -9.8, 0.0, 9.8, 9.85, 10.0])  # -9.9, 9.85 and 10.0 lie in the outer half-bins
    for loss, expected in (("mse", 0.0), ("hl-gauss", 0.0), ("two-hot", 3 / 6), ("c51", 3 / 6)):
        assert float(out_of_support_fraction(y, SUPPORT, loss)) == pytest.approx(expected), loss
    # symlog: the last centre is symexp(symlog(1000) − Δ/2) = e^6.84035 − 1 = 933.82, Δ = 2·log(1001)/101.
    top = math.expm1(math.log1p(1000.0) - math.log1p(1000.0) / 101)
    assert top == pytest.approx(933.82, abs=0.01)
    assert clip_range(SYMLOG_SUPPORT, "two-hot")[1] == pytest.approx(top, rel=1e-6)
    assert float(out_of_support_fraction(jnp.array([950.0, 900.0]), SYMLOG_SUPPORT, "two-hot")) == 0.5
    assert float(out_of_support_fraction(jnp.array([950.0, 900.0]), SYMLOG_SUPPORT, "mse")) == 0.0


def test_a_target_is_counted_out_of_support_exactly_when_its_loss_clips_it():
    y = jnp.linspace(-10.5, 10.5, 211)
    decoded = jnp.sum(two_hot_target(y, SUPPORT) * SUPPORT.centers, axis=-1)  # = y unless y was clipped
    clipped = np.abs(np.asarray(decoded - y)) > 1e-4
    flagged = [bool(out_of_support_fraction(v, SUPPORT, "two-hot")) for v in y]
    assert flagged == clipped.tolist() and 0 < clipped.sum() < len(y)
    # C51: all mass on atom j moves to r + γ·c_j; the projection keeps its mean unless it clipped the atom.
    gamma, j = 0.9, np.arange(SUPPORT.num_bins)
    for r in (-1.5, 0.0, 0.8, 1.2):
        scalar = r + gamma * SUPPORT.centers
        projected = c51_project(jax.nn.one_hot(j, SUPPORT.num_bins), jnp.full(j.shape, r), jnp.full(j.shape, gamma),
                                SUPPORT)
        clipped = np.abs(np.asarray(projected @ SUPPORT.centers) - scalar) > 1e-4
        flagged = [bool(out_of_support_fraction(v, SUPPORT, "c51")) for v in scalar]
        assert flagged == clipped.tolist()


# --- value_loss ------------------------------------------------------------------------------------


def test_critic_losses():
    assert CRITIC_LOSSES == ("mse", "hl-gauss", "two-hot", "c51")


@pytest.mark.parametrize(("kind", "target_fn"), [("hl-gauss", hl_gauss_target), ("two-hot", two_hot_target)])
def test_value_loss_dispatches(kind, target_fn):
    logits = jnp.asarray(np.random.default_rng(3).normal(size=(6, SUPPORT.num_bins)), jnp.float32)
    target = jnp.linspace(-12.0, 12.0, 6)
    loss = jax.jit(value_loss, static_argnums=(0, 3))(kind, logits, target, SUPPORT)
    assert loss.shape == (6,)
    np.testing.assert_allclose(loss, cross_entropy(logits, target_fn(target, SUPPORT)), rtol=1e-6)


def test_value_loss_mse_ignores_support():
    prediction, target = jnp.array([1.0, 2.0]), jnp.array([0.0, 2.0])
    np.testing.assert_allclose(value_loss("mse", prediction, target, None), [0.5, 0.0])


def test_value_loss_errors():
    logits = jnp.zeros((2, SUPPORT.num_bins))
    with pytest.raises(ConfigError, match="c51_project"):
        value_loss("c51", logits, jnp.zeros(2), SUPPORT)
    with pytest.raises(ConfigError, match="--critic-loss"):
        value_loss("huber", logits, jnp.zeros(2), SUPPORT)
    with pytest.raises(ValueError, match="num_bins"):
        value_loss("hl-gauss", jnp.zeros((2, 7)), jnp.zeros(2), SUPPORT)
    with pytest.raises(ValueError, match="ValueSupport"):
        value_loss("two-hot", logits, jnp.zeros(2), None)


def test_hl_gauss_learns_a_value_by_gradient_descent():
    # Minimising the HL-Gauss cross-entropy drives the decoded value to the target (paper Sec. 3).
    # Adam, because plain gradient steps shrink the tail bins' logits only as fast as their softmax mass.
    target = jnp.array([3.3, -7.1])
    optimizer = optax.adam(0.1)

    def loss(logits):
        return value_loss("hl-gauss", logits, target, SUPPORT).sum()

    @jax.jit
    def fit(logits):
        def step(carry, _):
            logits, opt_state = carry
            updates, opt_state = optimizer.update(jax.grad(loss)(logits), opt_state)
            return (optax.apply_updates(logits, updates), opt_state), None

        return jax.lax.scan(step, (logits, optimizer.init(logits)), None, length=500)[0][0]

    logits = fit(jnp.zeros((2, SUPPORT.num_bins)))
    np.testing.assert_allclose(expected_value(logits, SUPPORT), target, atol=0.02)
