"""rliable's statistics (depthrl.sweep.stats) against hand-computed values, scipy (trim_mean, Mann-Whitney U)
and synthetic data with a known answer."""

import numpy as np
import pytest
from scipy import stats

from depthrl.sweep import stats as aggregate


def test_iqm_is_the_25_percent_trimmed_mean_by_hand():
    # n = 8: drop the 2 lowest and the 2 highest.
    assert aggregate.iqm([8.0, 1.0, 7.0, 2.0, 6.0, 3.0, 5.0, 4.0]) == pytest.approx((3 + 4 + 5 + 6) / 4)
    # n = 3: int(0.75) = 0 scores dropped, the IQM is the mean.
    assert aggregate.iqm([10.0, 0.0, 1.0]) == pytest.approx(11 / 3)
    # n = 5: one dropped at each end, the outlier 100 does not count.
    assert aggregate.iqm([100.0, 1.0, 2.0, 3.0, 4.0]) == pytest.approx(3.0)
    assert aggregate.iqm([5.0]) == 5.0
    with pytest.raises(ValueError):
        aggregate.iqm([])


def test_iqm_equals_scipy_trim_mean_for_every_n():
    rng = np.random.default_rng(1)
    for n in range(1, 18):
        x = rng.normal(size=n)
        assert aggregate.iqm(x) == pytest.approx(stats.trim_mean(x, 0.25))
    x = rng.normal(size=(4, 7, 5))
    for axis in (0, 1, 2, -1):
        np.testing.assert_allclose(aggregate.iqm(x, axis=axis), stats.trim_mean(x, 0.25, axis=axis))


def test_fractional_iqm_counts_straddling_scores_in_part():
    # n = 3: score masses [0, 1/3], [1/3, 2/3], [2/3, 1]; the middle half keeps 1/12, 1/3, 1/12 of them.
    assert aggregate.fractional_iqm([10.0, 0.0, 1.0]) == pytest.approx((0 + 4 * 1 + 10) / 6)
    # n = 5: weights 0, 0.3, 0.4, 0.3, 0.
    assert aggregate.fractional_iqm([100.0, 1.0, 2.0, 3.0, 4.0]) == pytest.approx(0.3 * 2 + 0.4 * 3 + 0.3 * 4)
    x = np.random.default_rng(2).normal(size=(3, 12))  # n a multiple of 4: the two IQMs agree
    np.testing.assert_allclose(aggregate.fractional_iqm(x), aggregate.iqm(x))
    row = aggregate.summary({"a": [10.0, 0.0, 1.0]}, num_resamples=200, statistic="fractional-iqm")
    assert row["iqm"] == pytest.approx(14 / 6)
    with pytest.raises(ValueError, match="statistic"):
        aggregate.summary({"a": [1.0]}, statistic="median")


def test_stratified_bootstrap_never_mixes_strata():
    # Every within-stratum resample of constant strata is the data itself: a zero-width interval at the IQM
    # of [0, 0, 0, 1, 1, 1] (= 0.5). Resampling the pooled runs instead would give a wide interval.
    est = aggregate.stratified_bootstrap({"a": [0.0, 0.0, 0.0], "b": [1.0, 1.0, 1.0]}, num_resamples=500)
    assert (est.value, est.low, est.high) == (pytest.approx(0.5), pytest.approx(0.5), pytest.approx(0.5))
    pooled = aggregate.stratified_bootstrap([[0.0, 0.0, 0.0, 1.0, 1.0, 1.0]], num_resamples=500)
    assert pooled.high - pooled.low > 0.3


def test_bootstrap_ci_covers_the_true_iqm_about_95_percent_of_the_time():
    # Two tasks, 10 runs each: N(0, 1) and N(2, 1). Their equal mixture is symmetric about 1, so the
    # population IQM is exactly 1.
    rng = np.random.default_rng(0)
    trials, covered, covered_wrong, widths = 200, 0, 0, []
    for t in range(trials):
        data = {"a": rng.normal(0.0, 1.0, 10), "b": rng.normal(2.0, 1.0, 10)}
        est = aggregate.stratified_bootstrap(data, num_resamples=1000, seed=t)
        covered += est.low <= 1.0 <= est.high
        covered_wrong += est.low <= 2.0 <= est.high  # a value one unit off
        widths.append(est.high - est.low)
        assert est.low <= est.value <= est.high
    assert covered / trials >= 0.88
    assert covered_wrong / trials <= 0.05
    assert np.mean(widths) < 1.6


def test_probability_of_improvement_by_hand_and_against_mann_whitney():
    # x = [1, 2, 3] vs y = [2, 2, 0]: 1 beats one y, 2 ties two and beats one, 3 beats all three.
    x, y = [1.0, 2.0, 3.0], [2.0, 2.0, 0.0]
    est = aggregate.probability_of_improvement([x], [y], num_resamples=200)
    assert est.value == pytest.approx((1 + (0.5 + 0.5 + 1) + 3) / 9)
    assert est.value == pytest.approx(stats.mannwhitneyu(x, y).statistic / 9)
    rng = np.random.default_rng(3)
    for n, m in ((3, 3), (5, 4), (10, 7)):
        a, b = rng.integers(0, 4, n).astype(float), rng.integers(0, 4, m).astype(float)  # with ties
        u = stats.mannwhitneyu(a, b).statistic / (n * m)
        assert aggregate.probability_of_improvement({"t": a}, {"t": b}, num_resamples=100).value == pytest.approx(u)
    # Averaged over tasks: task a gives 1 (x always higher), task b 0.5 / 4 (one tie of four pairs, no win).
    est = aggregate.probability_of_improvement({"a": [5.0, 6.0], "b": [0.0, 1.0]}, {"a": [1.0], "b": [1.0, 2.0]},
                                               num_resamples=200)
    assert est.value == pytest.approx((1.0 + 0.125) / 2)


def test_probability_of_improvement_interval():
    sure = aggregate.probability_of_improvement([[5.0, 6.0, 7.0]], [[1.0, 2.0, 3.0]], num_resamples=300)
    assert (sure.value, sure.low, sure.high) == (1.0, 1.0, 1.0)  # every resample keeps X above Y
    same = aggregate.probability_of_improvement([[1.0, 1.0]], [[1.0, 1.0, 1.0]], num_resamples=300)
    assert (same.value, same.low, same.high) == (0.5, 0.5, 0.5)  # all ties
    rng = np.random.default_rng(4)
    x, y = rng.normal(0.5, 1.0, 8), rng.normal(0.0, 1.0, 8)
    xy = aggregate.probability_of_improvement([x], [y], num_resamples=1000, seed=1)
    yx = aggregate.probability_of_improvement([y], [x], num_resamples=1000, seed=1)
    assert xy.value + yx.value == pytest.approx(1.0)
    assert xy.low < xy.value < xy.high and xy.high - xy.low > 0.2
    with pytest.raises(ValueError, match="same tasks"):
        aggregate.probability_of_improvement({"a": [1.0]}, {"b": [1.0]})


def test_performance_profile_by_hand():
    # Task a: 3 runs, task b: 2 runs; the fraction above each threshold is averaged over the tasks.
    strata = {"a": [0.1, 0.5, 0.9], "b": [0.2, 0.2]}
    frac, low, high = aggregate.performance_profile(strata, [0.0, 0.2, 0.5, 1.0], num_resamples=500)
    np.testing.assert_allclose(frac, [1.0, (2 / 3 + 0) / 2, (1 / 3 + 0) / 2, 0.0])
    assert np.all(low <= frac + 1e-12) and np.all(frac <= high + 1e-12)
    assert low[0] == high[0] == 1.0 and low[-1] == high[-1] == 0.0  # every resample is above 0 and below 1
    assert high[1] - low[1] > 0.2  # task a's three runs vary
    const, clow, chigh = aggregate.performance_profile([[1.0, 1.0], [3.0]], [0.5, 2.0], num_resamples=200)
    np.testing.assert_allclose([const, clow, chigh], [[1.0, 0.5]] * 3)


def test_summary_row():
    row = aggregate.summary({"a": [0.0, 1.0], "b": [2.0, 3.0]}, num_resamples=200)
    assert row["runs"] == 4 and row["mean"] == pytest.approx(1.5) and row["iqm"] == pytest.approx(1.5)
    assert row["min"] == 0.0 and row["max"] == 3.0 and row["iqm_low"] <= 1.5 <= row["iqm_high"]


def test_bad_input():
    with pytest.raises(ValueError):
        aggregate.stratified_bootstrap({"a": []})
    with pytest.raises(ValueError):
        aggregate.stratified_bootstrap({"a": [1.0]}, confidence=1.5)
