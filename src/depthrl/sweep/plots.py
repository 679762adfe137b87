"""The plots of a sweep: final IQM against the first group axis with learning curves, performance profiles."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from depthrl.sweep import stats


def _label(values: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in values.items()) or "all"


def plot_aggregate(path: Path, table: list[dict], curves: list[dict], group_by: Sequence[str], metric: str,
                   title: str = "") -> Path:
    """Left: final IQM ± 95% CI against the first group axis (one colour per value of the others).
    Right: IQM learning curves with their CI bands, one per group; with two or more group axes and more than
    six groups, one panel per value of the first axis, each curve in the colour of its line on the left."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    x_axis, rest = (group_by[0], list(group_by[1:])) if group_by else (None, [])
    xs = list(dict.fromkeys(r[x_axis] for r in table)) if x_axis else ["all"]
    numeric = all(isinstance(x, int | float) and not isinstance(x, bool) for x in xs)
    lines: dict[tuple, list[dict]] = {}
    for r in table:
        lines.setdefault(tuple(r[k] for k in rest), []).append(r)
    colour = {key: f"C{i % 10}" for i, key in enumerate(lines)}  # a line's colour, the same in every facet
    by_group: dict[tuple, list[dict]] = {}
    for r in curves:
        by_group.setdefault(tuple(r[k] for k in group_by), []).append(r)
    faceted = bool(rest) and len(by_group) > 6
    facets = list(xs) if faceted else [None]
    fig = plt.figure(figsize=(6 + 4.2 * len(facets) if faceted else 12, 4.2))
    grid = fig.add_gridspec(1, 1 + len(facets), width_ratios=[1.4 if faceted else 1] + [1] * len(facets))
    ax = fig.add_subplot(grid[0, 0])
    for i, (key, rows) in enumerate(lines.items()):
        rows = sorted(rows, key=lambda r: xs.index(r[x_axis]) if x_axis else 0)
        pos = np.array([r[x_axis] if numeric else xs.index(r[x_axis]) for r in rows] if x_axis else [0], float)
        if not numeric and len(lines) > 1:  # side by side, so the error bars do not overlap
            pos = pos + (i - (len(lines) - 1) / 2) * 0.8 / len(lines)
        value = np.array([r["iqm"] for r in rows])
        err = np.array([[r["iqm"] - r["iqm_low"] for r in rows], [r["iqm_high"] - r["iqm"] for r in rows]])
        ax.errorbar(pos, value, yerr=np.clip(err, 0, None), marker="o", capsize=4, ls="-" if numeric else "none",
                    color=colour[key], label=_label(dict(zip(rest, key, strict=True))) if rest else None)
    if numeric and x_axis:
        ax.set_xscale("log", base=2) if all(x > 0 for x in xs) and max(xs) / min(xs) >= 8 else None
        ax.set_xticks(xs, [str(x) for x in xs])
    else:
        ax.set_xticks(range(len(xs)), [str(x) for x in xs])
    ax.set_xlabel(x_axis or "")
    ax.set_ylabel(f"IQM eval/{metric} (95% CI)")
    ax.grid(alpha=0.3)
    if rest:
        ax.legend(fontsize=8)
    low = min((r["iqm_low"] for r in curves), default=0.0)
    high = max((r["iqm_high"] for r in curves), default=1.0)
    for j, facet in enumerate(facets):
        ax = fig.add_subplot(grid[0, 1 + j])
        for key, rows in by_group.items():
            if faceted and key[0] != facet:
                continue
            steps = np.array([r["env_steps"] for r in rows], float)
            names, shown = (rest, key[1:]) if faceted else (group_by, key)
            (line,) = ax.plot(steps, [r["iqm"] for r in rows], color=colour[key[1:]] if faceted else None,
                              label=_label(dict(zip(names, shown, strict=True))))
            ax.fill_between(steps, [r["iqm_low"] for r in rows], [r["iqm_high"] for r in rows], alpha=0.15,
                            color=line.get_color())  # the band in its line's colour
        ax.set_xlabel("env steps (per seed)")
        if faceted:
            ax.set_title(f"{x_axis}={facet}", fontsize=10)
            ax.set_ylim(low - 0.02 * (high - low), high + 0.02 * (high - low))
        if j == 0:
            ax.set_ylabel(f"IQM eval/{metric}")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title or f"IQM of eval/{metric} over seeds (95% stratified bootstrap CI)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_performance_profile(path: Path, records: list[dict], group_by: Sequence[str], strata_by: Sequence[str],
                             metric: str, num_resamples: int = 2000, title: str = "") -> Path:
    """Performance profiles (rliable): per group, the fraction of runs whose score exceeds each threshold τ
    (averaged over the strata), with its 95% stratified bootstrap band; a curve further up and right is
    better everywhere."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    scores = np.array([r["score"] for r in records], float)
    span = float(scores.max() - scores.min()) or 1.0
    thresholds = np.linspace(scores.min() - 0.02 * span, scores.max() + 0.02 * span, 201)
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for i, (key, strata) in enumerate(stats.group_scores(records, group_by, strata_by).items()):
        frac, low, high = stats.performance_profile(list(strata.values()), thresholds, num_resamples)
        colour, style = f"C{i % 10}", ("-", "--", ":", "-.")[i // 10 % 4]
        ax.plot(thresholds, frac, color=colour, ls=style, label=_label(dict(zip(group_by, key, strict=True))))
        ax.fill_between(thresholds, low, high, color=colour, alpha=0.12, step=None)
    ax.set_xlabel(f"score τ (eval/{metric})")
    ax.set_ylabel("fraction of runs with score > τ")
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    # Wrapped: a sweep's own title plus ": performance profile" is wider than the figure (it was cut off at the edge).
    ax.set_title(textwrap.fill(title or f"Performance profiles of eval/{metric} (95% stratified bootstrap bands)", 70),
                 fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
