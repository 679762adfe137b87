"""A sweep's results: per-seed scores of its cells, aggregated over seeds per group (IQM + 95% CI,
probability of improvement, learning curves), written as CSVs and plots."""

from __future__ import annotations

import csv
import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from depthrl.sweep import stats
from depthrl.sweep.execute import read_rows
from depthrl.sweep.plots import plot_aggregate, plot_performance_profile
from depthrl.sweep.spec import SEED_AXIS, Cell, SweepSpec


def seed_scores(rows: list[dict], metric: str, last_evals: int) -> list[float]:
    """Per seed: the mean of its last `last_evals` evaluations of eval/METRIC ([] if none was logged)."""
    evals = [r for r in rows if f"eval/{metric}" in r][-last_evals:]
    if not evals:
        return []
    per_row = [r.get(f"eval/{metric}_per_seed", [r[f"eval/{metric}"]]) for r in evals]
    return [float(sum(col) / len(col)) for col in zip(*per_row, strict=True)]


def run_records(cells: list[Cell], metric: str, last_evals: int) -> list[dict]:
    """One record per (cell, seed): the cell's axis values, seed index and score."""
    records = []
    for cell in cells:
        for i, score in enumerate(seed_scores(read_rows(cell.run_dir), metric, last_evals)):
            records.append({**cell.values, "cell": cell.name, "seed_index": i, "score": score})
    return records


def aggregate_records(records: list[dict], group_by: Sequence[str], strata_by: Sequence[str],
                      num_resamples: int = 2000) -> list[dict]:
    """Per group (values of `group_by`): IQM + 95% stratified bootstrap CI of the scores, strata = the values
    of `strata_by` (e.g. env), runs within a stratum = seeds and cells that differ only by seed."""
    out = []
    for key, strata in stats.group_scores(records, group_by, strata_by).items():
        row = stats.summary({str(k): v for k, v in strata.items()}, num_resamples=num_resamples)
        out.append({**dict(zip(group_by, key, strict=True)), "strata": len(strata), **row})
    return out


def improvement_records(records: list[dict], group_by: Sequence[str], strata_by: Sequence[str],
                        baseline: str | None = None, num_resamples: int = 2000) -> list[dict]:
    """Probability of improvement P(X > Y) with its 95% CI between groups that differ only in the first group
    axis: every value X of it against `baseline` (compared as text), or without one every value against each
    earlier one (in the axis order), within each combination of the other group axes. A pair is compared on
    the strata (tasks) both have. Columns: the other axes, AXIS (X), vs_AXIS (Y), strata, runs of X and Y,
    prob_improvement and its _low / _high."""
    if not group_by:
        return []
    first, rest = group_by[0], list(group_by[1:])
    by_rest: dict[tuple, dict[Any, dict]] = {}
    for key, strata in stats.group_scores(records, group_by, strata_by).items():
        by_rest.setdefault(key[1:], {})[key[0]] = strata
    out = []
    for rest_key, values in by_rest.items():
        order = list(values)
        if baseline is None:
            pairs = [(x, y) for j, x in enumerate(order) for y in order[:j]]
        else:
            pairs = [(x, y) for y in order if str(y) == baseline for x in order if x != y]
        for x, y in pairs:
            common = [s for s in values[x] if s in values[y]]
            if not common:
                continue
            xs, ys = [values[x][s] for s in common], [values[y][s] for s in common]
            est = stats.probability_of_improvement(xs, ys, num_resamples=num_resamples)
            out.append({**dict(zip(rest, rest_key, strict=True)), first: x, f"vs_{first}": y, "strata": len(common),
                        "runs": sum(map(len, xs)), "vs_runs": sum(map(len, ys)), "prob_improvement": est.value,
                        "prob_improvement_low": est.low, "prob_improvement_high": est.high})
    return out


def curve_records(cells: list[Cell], metric: str, group_by: Sequence[str], num_resamples: int = 500) -> list[dict]:
    """Per group and env-step count: IQM (+ 95% CI) over every seed of the group's cells."""
    points: dict[tuple, dict[int, list[float]]] = {}
    for cell in cells:
        key = tuple(cell.values[g] for g in group_by)
        for r in read_rows(cell.run_dir):
            if f"eval/{metric}" in r:
                values = r.get(f"eval/{metric}_per_seed", [r[f"eval/{metric}"]])
                points.setdefault(key, {}).setdefault(int(r["env_steps"]), []).extend(values)
    out = []
    for key, by_step in points.items():
        for steps, values in sorted(by_step.items()):
            est = stats.stratified_bootstrap([values], num_resamples=num_resamples)
            out.append({**dict(zip(group_by, key, strict=True)), "env_steps": steps, "runs": len(values),
                        "iqm": est.value, "iqm_low": est.low, "iqm_high": est.high})
    return out


def improvement_line(row: dict) -> str:
    """One row of `improvement_records` as text: P(depth=16 > depth=4) at width=64: 0.78 [95% CI 0.33, 1.00]."""
    keys = list(row)[:-6]  # the other group axes..., AXIS, vs_AXIS (then strata, runs and the numbers)
    axis, where = keys[-2], ", ".join(f"{k}={row[k]}" for k in keys[:-2])
    return (f"P({axis}={row[axis]} > {axis}={row['vs_' + axis]}){' at ' + where if where else ''}: "
            f"{row['prob_improvement']:.2f} [95% CI {row['prob_improvement_low']:.2f}, "
            f"{row['prob_improvement_high']:.2f}]")


def write_csv(path: Path, records: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    columns = list(dict.fromkeys(k for r in records for k in r))
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(records)
    return path


@dataclasses.dataclass(frozen=True)
class SweepResult:
    cells: list[Cell]
    states: dict[str, dict]
    records: list[dict]  # per (cell, seed) scores
    table: list[dict]  # aggregate rows
    curves: list[dict]
    files: list[Path]
    improvement: list[dict] = dataclasses.field(default_factory=list)  # probability-of-improvement rows

    @property
    def failed(self) -> list[str]:
        return [n for n, s in self.states.items() if s["status"] == "failed"]


def summarize(spec: SweepSpec, cells: list[Cell], out: Path, metric: str = "time_at_goal", last_evals: int = 1,
              group_by: Sequence[str] | None = None, num_resamples: int = 2000, title: str = "",
              states: dict[str, dict] | None = None, baseline: str | None = None) -> SweepResult:
    """Scores, aggregate table, probability of improvement, curves, CSVs and plots of a sweep's finished cells."""
    group_by = default_group_by(spec, group_by)
    strata_by = [a for a in spec.axes if a not in group_by and a != SEED_AXIS]
    records = run_records(cells, metric, last_evals)
    if not records:
        return SweepResult(cells, states or {}, [], [], [], [])
    table = aggregate_records(records, group_by, strata_by, num_resamples)
    improvement = improvement_records(records, group_by, strata_by, baseline, num_resamples)
    curves = curve_records(cells, metric, group_by)
    files = [write_csv(out / "scores.csv", records), write_csv(out / "aggregate.csv", table)]
    if improvement:
        files.append(write_csv(out / "probability_of_improvement.csv", improvement))
    files += [write_csv(out / "curves.csv", curves),
              plot_aggregate(out / "aggregate.png", table, curves, group_by, metric, title),
              plot_performance_profile(out / "performance_profile.png", records, group_by, strata_by, metric,
                                       num_resamples, title and f"{title}: performance profiles")]
    return SweepResult(cells, states or {}, records, table, curves, files, improvement)


def default_group_by(spec: SweepSpec, group_by: Sequence[str] | None) -> list[str]:
    """The compared axes: those given, else every axis but seed."""
    return list(group_by) if group_by is not None else [a for a in spec.axes if a != SEED_AXIS]
