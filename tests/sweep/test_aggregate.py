"""IQM and stratified bootstrap CIs (depthrl.aggregate) against hand-computed values and synthetic data
with a known answer."""

import numpy as np
import pytest
from scipy import stats

from depthrl import aggregate


def test_iqm_of_eight_scores_is_the_mean_of_the_middle_four():
    scores = [8.0, 1.0, 7.0, 2.0, 6.0, 3.0, 5.0, 4.0]
    assert aggregate.iqm(scores) == pytest.approx((3 + 4 + 5 + 6) / 4)


def test_iqm_counts_straddling_scores_in_part():
    # n = 3: score masses [0, 1/3], [1/3, 2/3], [2/3, 1]; the middle half keeps 1/12, 1/3, 1/12 of them.
    assert aggregate.iqm([10.0, 0.0, 1.0]) == pytest.approx((0 + 4 * 1 + 10) / 6)
    # n = 5: weights 0, 0.3, 0.4, 0.3, 0 — the outlier 100 does not count at all.
    assert aggregate.iqm([100.0, 1.0, 2.0, 3.0, 4.0]) == pytest.approx(0.3 * 2 + 0.4 * 3 + 0.3 * 4)
    assert aggregate.iqm([5.0]) == 5.0


def test_iqm_equals_the_25_percent_trimmed_mean_when_n_is_a_multiple_of_4():
    rng = np.random.default_rng(1)
    for n in (4, 12, 40):
        x = rng.normal(size=n)
        assert aggregate.iqm(x) == pytest.approx(stats.trim_mean(x, 0.25))


def test_iqm_along_an_axis():
    x = np.array([[1.0, 2.0, 3.0, 4.0], [0.0, 0.0, 10.0, 10.0]])
    np.testing.assert_allclose(aggregate.iqm(x, axis=-1), [2.5, 5.0])
    np.testing.assert_allclose(aggregate.iqm(x.T, axis=0), [2.5, 5.0])


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


def test_summary_row():
    row = aggregate.summary({"a": [0.0, 1.0], "b": [2.0, 3.0]}, num_resamples=200)
    assert row["runs"] == 4 and row["mean"] == pytest.approx(1.5) and row["iqm"] == pytest.approx(1.5)
    assert row["min"] == 0.0 and row["max"] == 3.0 and row["iqm_low"] <= 1.5 <= row["iqm_high"]


def test_bad_input():
    with pytest.raises(ValueError):
        aggregate.stratified_bootstrap({"a": []})
    with pytest.raises(ValueError):
        aggregate.stratified_bootstrap({"a": [1.0]}, confidence=1.5)
