"""Aggregate scores across seeds (and tasks) as rliable recommends (Agarwal et al. 2021, "Deep RL at the
Edge of the Statistical Precipice"): the interquartile mean (IQM) with a 95% stratified bootstrap
confidence interval. Plain numpy, no rliable dependency.

IQM = the mean of the middle 50% of the scores. This implementation is exact for any number of runs:
each of the n sorted scores carries mass 1/n, and only the mass between the 25% and 75% quantiles
counts (a score straddling a cut counts in part). For n a multiple of 4 it equals rliable's
`scipy.stats.trim_mean(x, 0.25)`; for n = 3 it is (x₁ + 4·x₂ + x₃) / 6 where trim_mean would drop
nothing and return the plain mean.

Stratified bootstrap: runs are resampled with replacement *within* each task (stratum), never across
tasks, so every bootstrap sample keeps the design of the experiment; the CI is the percentile interval
of the bootstrapped IQMs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import numpy as np


def iqm_weights(n: int) -> np.ndarray:
    """[n] weights (summing to 1) of the sorted scores in the interquartile mean."""
    if n < 1:
        raise ValueError("IQM of no scores")
    edges = np.arange(n + 1) / n  # score i holds the mass [i/n, (i+1)/n]
    overlap = np.clip(np.minimum(edges[1:], 0.75) - np.maximum(edges[:-1], 0.25), 0.0, None)
    return overlap / 0.5


def iqm(scores: np.ndarray | Sequence[float], axis: int = -1) -> np.ndarray:
    """Interquartile mean along `axis` (exact fractional trimming, see the module docstring)."""
    x = np.sort(np.asarray(scores, dtype=np.float64), axis=axis)
    w = iqm_weights(x.shape[axis])
    return np.moveaxis(x, axis, -1) @ w


@dataclasses.dataclass(frozen=True)
class Estimate:
    """A point estimate with a percentile bootstrap confidence interval."""

    value: float
    low: float
    high: float


def _pool(strata: Sequence[np.ndarray]) -> np.ndarray:
    return np.concatenate([np.ravel(s) for s in strata])


def stratified_bootstrap(strata: Mapping[str, Sequence[float]] | Sequence[Sequence[float]], statistic=iqm,
                         num_resamples: int = 2000, confidence: float = 0.95, seed: int = 0) -> Estimate:
    """`statistic` of the pooled scores of all strata, with a `confidence` percentile interval from
    `num_resamples` stratified bootstrap resamples (runs drawn with replacement within each stratum).

    strata: task -> [runs] scores (or a list of such arrays). `statistic` reduces the last axis.
    """
    groups = list(strata.values()) if isinstance(strata, Mapping) else list(strata)
    groups = [np.asarray(g, dtype=np.float64).ravel() for g in groups]
    if not groups or any(g.size == 0 for g in groups):
        raise ValueError("every stratum needs at least one score")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")
    rng = np.random.default_rng(seed)
    # [num_resamples, total runs]: each stratum resampled from itself only.
    resampled = np.concatenate([g[rng.integers(0, g.size, size=(num_resamples, g.size))] for g in groups], axis=1)
    stats = statistic(resampled, axis=-1)
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(stats, [alpha, 1.0 - alpha])
    return Estimate(value=float(statistic(_pool(groups), axis=-1)), low=float(low), high=float(high))


def summary(strata: Mapping[str, Sequence[float]], num_resamples: int = 2000, seed: int = 0) -> dict[str, float]:
    """The numbers of one aggregate row: runs, mean, std, median, IQM and its 95% CI, min, max."""
    pooled = _pool([np.asarray(v, dtype=np.float64) for v in strata.values()])
    est = stratified_bootstrap(strata, iqm, num_resamples=num_resamples, seed=seed)
    return {"runs": int(pooled.size), "mean": float(pooled.mean()), "std": float(pooled.std()),
            "median": float(np.median(pooled)), "iqm": est.value, "iqm_low": est.low, "iqm_high": est.high,
            "min": float(pooled.min()), "max": float(pooled.max())}
