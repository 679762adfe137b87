"""Aggregate scores across seeds (and tasks) as rliable does (Agarwal et al. 2021, "Deep RL at the Edge of
the Statistical Precipice"). Plain numpy, no rliable dependency.

- IQM: the 25% trimmed mean of all runs, `scipy.stats.trim_mean(x, 0.25)`: sort the n scores, drop the
  ⌊n/4⌋ lowest and the ⌊n/4⌋ highest, average the rest. With n = 3 nothing is dropped (the IQM is the
  mean); with n = 5 it is the mean of the middle three. `fractional_iqm` is the variant that weights a
  score straddling a quartile in part (3 scores → (x₁ + 4·x₂ + x₃) / 6); it equals `iqm` when n is a
  multiple of 4 and is kept for comparison with numbers computed that way.
- Stratified bootstrap CI: runs are resampled with replacement *within* each task (stratum), never across
  tasks, so every bootstrap sample keeps the design of the experiment; the CI is the percentile interval
  of the bootstrapped statistic.
- Probability of improvement P(X > Y) of configuration X over Y: per task, the probability that a run of X
  scores higher than a run of Y, ties counting half (the Mann-Whitney U statistic divided by n·m),
  averaged over tasks; CI from resampling the runs of X and of Y independently within each task.
- Performance profile: for each threshold τ, the fraction of runs scoring above τ (averaged over tasks),
  with a stratified bootstrap band.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence

import numpy as np

Strata = Mapping[str, Sequence[float]] | Sequence[Sequence[float]]


def iqm(scores: np.ndarray | Sequence[float], axis: int = -1) -> np.ndarray:
    """The 25% trimmed mean along `axis` (rliable's IQM, `scipy.stats.trim_mean(x, 0.25, axis)`)."""
    x = np.sort(np.asarray(scores, dtype=np.float64), axis=axis)
    n = x.shape[axis]
    if n < 1:
        raise ValueError("IQM of no scores")
    cut = int(0.25 * n)
    return np.take(x, np.arange(cut, n - cut), axis=axis).mean(axis=axis)


def fractional_iqm_weights(n: int) -> np.ndarray:
    """[n] weights (summing to 1) of the sorted scores in `fractional_iqm`: score i holds the mass
    [i/n, (i+1)/n] and counts by its overlap with [0.25, 0.75]."""
    if n < 1:
        raise ValueError("IQM of no scores")
    edges = np.arange(n + 1) / n
    overlap = np.clip(np.minimum(edges[1:], 0.75) - np.maximum(edges[:-1], 0.25), 0.0, None)
    return overlap / 0.5


def fractional_iqm(scores: np.ndarray | Sequence[float], axis: int = -1) -> np.ndarray:
    """Mean of the middle 50% of the scores' mass along `axis`, a straddling score counting in part."""
    x = np.sort(np.asarray(scores, dtype=np.float64), axis=axis)
    return np.moveaxis(x, axis, -1) @ fractional_iqm_weights(x.shape[axis])


STATISTICS: dict[str, Callable] = {"iqm": iqm, "fractional-iqm": fractional_iqm}


@dataclasses.dataclass(frozen=True)
class Estimate:
    """A point estimate with a percentile bootstrap confidence interval."""

    value: float
    low: float
    high: float


def _groups(strata: Strata) -> list[np.ndarray]:
    groups = list(strata.values()) if isinstance(strata, Mapping) else list(strata)
    groups = [np.asarray(g, dtype=np.float64).ravel() for g in groups]
    if not groups or any(g.size == 0 for g in groups):
        raise ValueError("every stratum needs at least one score")
    return groups


def _alpha(confidence: float) -> float:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")
    return (1.0 - confidence) / 2.0


def _resample(g: np.ndarray, rng: np.random.Generator, num_resamples: int) -> np.ndarray:
    """[num_resamples, g.size]: g's runs drawn with replacement."""
    return g[rng.integers(0, g.size, size=(num_resamples, g.size))]


def stratified_bootstrap(strata: Strata, statistic: Callable = iqm, num_resamples: int = 2000,
                         confidence: float = 0.95, seed: int = 0) -> Estimate:
    """`statistic` of the pooled scores of all strata, with a `confidence` percentile interval from
    `num_resamples` stratified bootstrap resamples (runs drawn with replacement within each stratum).

    strata: task -> [runs] scores (or a list of such arrays). `statistic` reduces the last axis.
    """
    groups = _groups(strata)
    alpha = _alpha(confidence)
    rng = np.random.default_rng(seed)
    resampled = np.concatenate([_resample(g, rng, num_resamples) for g in groups], axis=1)
    low, high = np.quantile(statistic(resampled, axis=-1), [alpha, 1.0 - alpha])
    return Estimate(value=float(statistic(np.concatenate(groups), axis=-1)), low=float(low), high=float(high))


def _improvement(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """P(X > Y) + ½ P(X = Y) over all pairs of runs: x [..., n], y [..., m] -> [...]."""
    diff = x[..., :, None] - y[..., None, :]
    return np.mean((diff > 0) + 0.5 * (diff == 0), axis=(-2, -1))


def probability_of_improvement(x: Strata, y: Strata, num_resamples: int = 2000, confidence: float = 0.95,
                               seed: int = 0) -> Estimate:
    """P(X > Y) of configuration X over Y, averaged over the tasks, with its percentile bootstrap CI.

    x, y: task -> [runs] scores of X and of Y on the same tasks (or lists in the same task order). Per task
    the estimate is the Mann-Whitney U of X against Y over n·m; each bootstrap resample draws the runs of X
    and of Y independently, with replacement, within each task.
    """
    if isinstance(x, Mapping) != isinstance(y, Mapping):
        raise ValueError("give x and y both as task -> runs mappings, or both as lists")
    if isinstance(x, Mapping) and set(x) != set(y):
        raise ValueError(f"x and y must cover the same tasks: {sorted(x)} vs {sorted(y)}")
    xs = _groups([x[k] for k in sorted(x)] if isinstance(x, Mapping) else x)
    ys = _groups([y[k] for k in sorted(y)] if isinstance(y, Mapping) else y)
    if len(xs) != len(ys):
        raise ValueError(f"x has {len(xs)} tasks, y {len(ys)}")
    alpha = _alpha(confidence)
    rng = np.random.default_rng(seed)
    value = np.mean([_improvement(a, b) for a, b in zip(xs, ys, strict=True)])
    boot = np.mean([_improvement(_resample(a, rng, num_resamples), _resample(b, rng, num_resamples))
                    for a, b in zip(xs, ys, strict=True)], axis=0)
    low, high = np.quantile(boot, [alpha, 1.0 - alpha])
    return Estimate(value=float(value), low=float(low), high=float(high))


def _profile(groups: list[np.ndarray], thresholds: np.ndarray) -> np.ndarray:
    """Fraction of runs above each threshold, averaged over the tasks: [..., runs] per task -> [..., T]."""
    return np.mean([np.mean(g[..., None, :] > thresholds[:, None], axis=-1) for g in groups], axis=0)


def performance_profile(strata: Strata, thresholds: np.ndarray | Sequence[float], num_resamples: int = 2000,
                        confidence: float = 0.95, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(fraction, low, high), each [T]: the fraction of runs with a score > τ for every threshold τ (per task,
    then averaged over the tasks), and its stratified bootstrap percentile band."""
    groups = _groups(strata)
    alpha = _alpha(confidence)
    thresholds = np.asarray(thresholds, dtype=np.float64).ravel()
    rng = np.random.default_rng(seed)
    boot = _profile([_resample(g, rng, num_resamples) for g in groups], thresholds)  # [R, T]
    low, high = np.quantile(boot, [alpha, 1.0 - alpha], axis=0)
    return _profile(groups, thresholds), low, high


def summary(strata: Mapping[str, Sequence[float]], num_resamples: int = 2000, seed: int = 0,
            statistic: str = "iqm") -> dict[str, float]:
    """The numbers of one aggregate row: runs, mean, std, median, IQM and its 95% CI, min, max.

    statistic: "iqm" (rliable's 25% trimmed mean) or "fractional-iqm"; the columns keep the names iqm*."""
    if statistic not in STATISTICS:
        raise ValueError(f"statistic must be one of {', '.join(STATISTICS)}, got {statistic!r}")
    pooled = np.concatenate(_groups(strata))
    est = stratified_bootstrap(strata, STATISTICS[statistic], num_resamples=num_resamples, seed=seed)
    return {"runs": int(pooled.size), "mean": float(pooled.mean()), "std": float(pooled.std()),
            "median": float(np.median(pooled)), "iqm": est.value, "iqm_low": est.low, "iqm_high": est.high,
            "min": float(pooled.min()), "max": float(pooled.max())}


def group_scores(records: list[dict], group_by: Sequence[str], strata_by: Sequence[str]) -> dict[tuple, dict]:
    """{values of `group_by`: {values of `strata_by` (the task): [scores of its runs]}}, in the records' order."""
    groups: dict[tuple, dict[tuple, list[float]]] = {}
    for r in records:
        key = tuple(r[g] for g in group_by)
        groups.setdefault(key, {}).setdefault(tuple(r[s] for s in strata_by), []).append(r["score"])
    return groups
